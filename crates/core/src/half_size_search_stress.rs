//! Stress tests of the half-size search (from the attacker review of round 2g): no panic and the
//! bounds for many k (random, adversarial continued fractions, edges),
//! the share that falls back, and the worst time per search.

use super::*;

use crate::ed25519_test_inputs::scalar;

#[test]
fn search_never_panics_and_pairs_hold() {
    let mut ks: Vec<Scalar> = (0..20_000u64).map(|i| scalar("random k", i)).collect();
    // Adversarial: k = a/b mod ℓ and k = 8ℓ·p/q-like via inverses, powers of 2.
    for a in 1..200u64 {
        for b in [1u64, 2, 3, 5, 8, 13, 1 << 20, u64::MAX] {
            ks.push(Scalar::from(a) * Scalar::from(b).invert());
            ks.push(-Scalar::from(a) * Scalar::from(b).invert());
        }
    }
    let two = Scalar::from(2u8);
    let mut t = Scalar::ONE;
    for _ in 0..253 {
        ks.extend([t, -t, t + Scalar::ONE, t - Scalar::ONE]);
        t *= two;
    }
    let (mut none, mut worst) = (0usize, std::time::Duration::ZERO);
    let start_all = std::time::Instant::now();
    for k in &ks {
        let start = std::time::Instant::now();
        let got = half_size(k);
        worst = worst.max(start.elapsed());
        match got {
            None => none += 1,
            Some(pair) => {
                let c = if pair.c_negative { -pair.c } else { pair.c };
                assert_eq!(c * k, pair.d);
                assert_eq!(pair.c.as_bytes()[0] & 1, 1);
                assert!(U256::from_le_bytes(pair.c.as_bytes()).bits() <= MAX_BITS);
                assert!(U256::from_le_bytes(pair.d.as_bytes()).bits() <= MAX_BITS);
            }
        }
    }
    println!("half-size search: {} k, {none} without a pair, worst {worst:?}, total {:?}", ks.len(), start_all.elapsed());
}
