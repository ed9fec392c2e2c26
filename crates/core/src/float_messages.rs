//! The boundary's "invalid type: floating point `1.5`, expected ..."
//! messages (serde-wasm-bindgen's decoders, vendored: docs/ENGINE.md S1)
//! write the float from JavaScript's `String(number)` instead of Rust's
//! `{}`, which linked core's flt2dec (bench/README.md "Size round 3b"). The
//! digits are the same (both are the shortest that read back as the value,
//! the closest of those) except halfway between two, where Rust takes the
//! larger and JavaScript the even one; this checks the rewriting into Rust's form on
//! `String` outputs taken from Node 20 for those bit patterns: every branch
//! (exponent or not, above and below one, subnormal, largest, the ties of
//! shortest digits, halfway cases) and random values.

const FROM_NODE: &[(u64, &str)] = &[
    (0x0000000000000000, "0"),
    (0x3ff0000000000000, "1"),
    (0x3ff8000000000000, "1.5"),
    (0x3fb999999999999a, "0.1"),
    (0x3fd3333333333333, "0.3"),
    (0x4059000000000000, "100"),
    (0x4062c00000000000, "150"),
    (0x405edd2f1a9fbe77, "123.456"),
    (0x444b1ae4d6e2ef50, "1e+21"),
    (0x4480f0cf064dd592, "1e+22"),
    (0x7e41eb2d66005835, "1.5e+300"),
    (0x0000000000000001, "5e-324"),
    (0x0010000000000000, "2.2250738585072014e-308"),
    (0x7fefffffffffffff, "1.7976931348623157e+308"),
    (0x3eb0c6f7a0b5ed8d, "0.000001"),
    (0x3eb92a737110e454, "0.0000015"),
    (0x3e7ad7f29abcaf48, "1e-7"),
    (0x441ac53a7e04bcda, "123456789012345680000"),
    (0x4340000000000000, "9007199254740992"),
    (0x4011666666666666, "4.35"),
    (0x3fd3333333333334, "0.30000000000000004"),
    (0x3fd5555555555555, "0.3333333333333333"),
    (0x3fe5555555555555, "0.6666666666666666"),
    (0x400921fb54442d18, "3.141592653589793"),
    (0x4005bf0a8b145769, "2.718281828459045"),
    (0x3ee4f8b588e368f1, "0.00001"),
    (0x42dc12216116c000, "123456780000000"),
    (0x44b52d02c7e14af6, "1e+23"),
    (0x3ea0c6f7a0b5ed8d, "5e-7"),
    (0x7f6bb8424b0d4631, "6.082962041598888e+305"),
    (0x177c9546fd579a42, "1.5295101931028491e-195"),
    (0x113b14f6d3fcf27f, "1.1432000933710525e-225"),
    (0x5d4fca3f69884ace, "3.0285791125559346e+141"),
    (0x41a3c9ea44e980d9, "165999906.45606115"),
    (0x6c52ded21575007b, "6.352693270480799e+213"),
    (0x30df92937a5dc4bf, "2.7920995774922222e-73"),
    (0x5fb2e32aed00a891, "9.892120292264643e+152"),
    (0x23543c234ccd6305, "1.6991955356234193e-138"),
    (0x3ba6c4a899e47ddd, "2.4106766948165187e-21"),
    (0x462bb6c89cc3dd86, "1.0978645925693969e+30"),
    (0x48cadd246d7ff672, "4.680340516157782e+42"),
    // Halfway between two shortest digit strings: JavaScript takes the even
    // one, Rust the larger (1340314274397528.3, 96223149100730.13, ...).
    (0x43130c08f0d9f561, "1340314274397528.2"),
    (0x42d5e0eca7c3ae88, "96223149100730.12"),
    (0x4310000000000001, "1125899906842624.2"),
    (0x4310000000000007, "1125899906842625.8"),
    (0x431fffffffffffff, "2251799813685247.8"),
    (0x4300000000000001, "562949953421312.1"),
    (0x4300000000000003, "562949953421312.4"),
    (0x432fffffffffffff, "4503599627370495.5"),
];

#[test]
fn a_float_reads_as_rusts_display_of_it() {
    for &(bits, js) in FROM_NODE {
        let value = f64::from_bits(bits);
        for value in [value, -value] {
            assert_eq!(serde_wasm_bindgen::rust_display_of_js_number(value, js), format!("{value}"), "{js}");
        }
    }
}
