//! Loops of one curve operation each, exported to JS without wasm-bindgen:
//! JS writes the inputs into `buffer()` and times `run(op, iterations)`.
//! Each iteration feeds its output into the next input so nothing can be
//! hoisted out of the loop.

use ed25519_dalek::{Signer as _, SigningKey};
use x25519_dalek::{PublicKey, StaticSecret};

/// 0..32 secret, 32..64 peer public key, 64..128 output, 128..228 message.
static mut BUFFER: [u8; 256] = [0; 256];

#[no_mangle]
pub extern "C" fn buffer() -> *mut u8 {
    core::ptr::addr_of_mut!(BUFFER) as *mut u8
}

fn buf() -> &'static mut [u8; 256] {
    unsafe { &mut *core::ptr::addr_of_mut!(BUFFER) }
}

fn secret() -> [u8; 32] {
    buf()[..32].try_into().unwrap_or([1; 32])
}

fn feed(out: &[u8]) {
    let b = buf();
    b[64..64 + out.len()].copy_from_slice(out);
    // The next secret depends on this output.
    b[0] ^= out[0];
    b[1] ^= out[1];
}

/// op 0: X25519 public key of a secret (fixed-base, dalek's table);
/// 1: X25519 DH with a variable point; 2: an Encap's curve work (public key
/// of a fresh secret + DH to the peer); 3: Ed25519 public key of a seed;
/// 4: Ed25519 signature of 100 bytes with a kept SigningKey;
/// 5: the same from the seed (expanding the key each time).
#[no_mangle]
pub extern "C" fn run(op: u32, iterations: u32) {
    let key = SigningKey::from_bytes(&secret());
    for _ in 0..iterations {
        match op {
            0 => feed(PublicKey::from(&StaticSecret::from(secret())).as_bytes()),
            1 => {
                let peer: [u8; 32] = buf()[32..64].try_into().unwrap_or([9; 32]);
                feed(StaticSecret::from(secret()).diffie_hellman(&PublicKey::from(peer)).as_bytes())
            }
            2 => {
                let peer: [u8; 32] = buf()[32..64].try_into().unwrap_or([9; 32]);
                let ephemeral = StaticSecret::from(secret());
                let enc = PublicKey::from(&ephemeral);
                let dh = ephemeral.diffie_hellman(&PublicKey::from(peer));
                feed(enc.as_bytes());
                feed(dh.as_bytes());
            }
            3 => feed(SigningKey::from_bytes(&secret()).verifying_key().as_bytes()),
            4 => {
                let message: [u8; 100] = buf()[128..228].try_into().unwrap_or([0; 100]);
                let signature = key.sign(&message).to_bytes();
                buf()[128] ^= signature[0];
                feed(&signature);
            }
            _ => {
                let message: [u8; 100] = buf()[128..228].try_into().unwrap_or([0; 100]);
                let signature = SigningKey::from_bytes(&secret()).sign(&message).to_bytes();
                feed(&signature);
            }
        }
    }
}
