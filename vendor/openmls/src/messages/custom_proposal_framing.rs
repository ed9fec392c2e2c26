//! # Custom proposal framing
//!
//! RFC 9420 §12.1 puts a proposal's body right after its type:
//! `select (Proposal.proposal_type) { case ...: T body; }`. openmls knows the
//! struct of every RFC 9420 proposal, but not of a custom one, so it frames a
//! custom proposal's body as an `opaque payload<V>`. A document that defines
//! a new proposal type as a struct (e.g. draft-kohbrok-mls-leaf-operation-intents
//! §2.1, `struct { LeafOperationIntent intent; } LeafOperationProposal`) has
//! no such length prefix.
//!
//! An application declares such a type "framed by its own struct" once, at
//! initialisation, with a function that finds where a body ends
//! ([`register_self_framed`]). A [`CustomProposal`](super::proposals::CustomProposal)
//! of that type keeps its body as its payload; on the wire (and so in what is
//! signed, hashed into a ProposalRef and sent) the body follows the type
//! directly. Types not registered keep the `opaque<V>` framing.
//!
//! The registry is process-wide: TLS deserialization has no provider or group
//! at hand, and a proposal type's wire layout is the same in every group.

use std::{io::Read, sync::RwLock};

/// What a body-length function says about the bytes that follow a proposal
/// type (a prefix of the rest of the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// The body is the first `n` bytes.
    Complete(usize),
    /// The bytes end inside the body: at least this many bytes (in all,
    /// more than given) are needed to say more.
    Incomplete(usize),
    /// The bytes cannot start a body of this type.
    Malformed,
}

/// Finds the end of a body of one self-framed custom proposal type.
pub type BodyLengthFn = fn(&[u8]) -> BodyLength;

static SELF_FRAMED: RwLock<Vec<(u16, BodyLengthFn)>> = RwLock::new(Vec::new());

/// Declares `proposal_type` framed by its own struct: its body is written
/// without the `opaque<V>` prefix, and `body_length` finds where it ends when
/// it is read. Registering a type again replaces its function.
pub fn register_self_framed(proposal_type: u16, body_length: BodyLengthFn) {
    let mut table = SELF_FRAMED.write().unwrap_or_else(|e| e.into_inner());
    table.retain(|(t, _)| *t != proposal_type);
    table.push((proposal_type, body_length));
}

/// The body-length function of `proposal_type`, if it is self-framed.
pub fn self_framed(proposal_type: u16) -> Option<BodyLengthFn> {
    let table = SELF_FRAMED.read().unwrap_or_else(|e| e.into_inner());
    table
        .iter()
        .find(|(t, _)| *t == proposal_type)
        .map(|(_, f)| *f)
}

/// Reads one self-framed body: no byte past its end is read, and a body the
/// function refuses, or that the input ends inside, is an error.
pub(crate) fn read_body<R: Read>(
    body_length: BodyLengthFn,
    bytes: &mut R,
) -> Result<Vec<u8>, tls_codec::Error> {
    let mut body = Vec::new();
    loop {
        match body_length(&body) {
            BodyLength::Complete(n) if n == body.len() => return Ok(body),
            BodyLength::Incomplete(n) if n > body.len() => {
                let wanted = n - body.len();
                // Grows with the bytes actually read, not the claimed length.
                let got = bytes
                    .take(wanted as u64)
                    .read_to_end(&mut body)
                    .map_err(|_| tls_codec::Error::EndOfStream)?;
                if got < wanted {
                    return Err(tls_codec::Error::EndOfStream);
                }
            }
            _ => {
                return Err(tls_codec::Error::DecodingError(
                    "malformed custom proposal body".into(),
                ))
            }
        }
    }
}

/// Checks that `payload` is exactly one body before it is written without a
/// length prefix (else the proposals after it would not parse).
pub(crate) fn check_body(
    body_length: BodyLengthFn,
    payload: &[u8],
) -> Result<(), tls_codec::Error> {
    match body_length(payload) {
        BodyLength::Complete(n) if n == payload.len() => Ok(()),
        _ => Err(tls_codec::Error::EncodingError(
            "custom proposal payload is not one body of its type".into(),
        )),
    }
}
