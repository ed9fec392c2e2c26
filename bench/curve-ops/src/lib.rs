//! Loops of one curve operation each, exported to JS without wasm-bindgen:
//! JS writes the inputs into `buffer()` and times `run(op, iterations)`.
//! Each iteration feeds its output into the next input so nothing can be
//! hoisted out of the loop.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{EdwardsBasepointTableRadix16, EdwardsBasepointTableRadix32, EdwardsBasepointTableRadix64};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
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
/// 5: the same from the seed (expanding the key each time);
/// 6/7/8: X25519 public key (clamp, a·B, to Montgomery) through a radix
/// 16/32/64 basepoint table built at the first call and kept (the core's
/// fixed_base.rs); 9/10/11: building that table.
#[no_mangle]
pub extern "C" fn run(op: u32, iterations: u32) {
    let key = SigningKey::from_bytes(&secret());
    if (6..=11).contains(&op) {
        return run_tables(op, iterations);
    }
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

fn clamped() -> Scalar {
    let mut bytes = secret();
    bytes[0] &= 248;
    bytes[31] &= 127;
    bytes[31] |= 64;
    Scalar::from_bytes_mod_order(bytes)
}

fn public_through<T: BasepointTable<Point = curve25519_dalek::EdwardsPoint>>(table: &T, iterations: u32) {
    for _ in 0..iterations {
        feed(table.mul_base(&clamped()).to_montgomery().as_bytes());
    }
}

fn build<T: BasepointTable<Point = curve25519_dalek::EdwardsPoint>>(iterations: u32) {
    for _ in 0..iterations {
        let table = Box::new(T::create(&ED25519_BASEPOINT_POINT));
        feed(table.basepoint().compress().as_bytes());
    }
}

thread_local! {
    // Built at the first call, as the core builds its table; kept across calls.
    static RADIX16: Box<EdwardsBasepointTableRadix16> = Box::new(EdwardsBasepointTableRadix16::create(&ED25519_BASEPOINT_POINT));
    static RADIX32: Box<EdwardsBasepointTableRadix32> = Box::new(EdwardsBasepointTableRadix32::create(&ED25519_BASEPOINT_POINT));
    static RADIX64: Box<EdwardsBasepointTableRadix64> = Box::new(EdwardsBasepointTableRadix64::create(&ED25519_BASEPOINT_POINT));
}

fn run_tables(op: u32, iterations: u32) {
    match op {
        6 => RADIX16.with(|table| public_through(&**table, iterations)),
        7 => RADIX32.with(|table| public_through(&**table, iterations)),
        8 => RADIX64.with(|table| public_through(&**table, iterations)),
        9 => build::<EdwardsBasepointTableRadix16>(iterations),
        10 => build::<EdwardsBasepointTableRadix32>(iterations),
        _ => build::<EdwardsBasepointTableRadix64>(iterations),
    }
}
