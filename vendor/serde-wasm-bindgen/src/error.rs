use wasm_bindgen::prelude::*;

/// A newtype that represents Serde errors as JavaScript exceptions.
#[derive(Debug)]
pub struct Error(JsValue);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        #[wasm_bindgen]
        extern "C" {
            #[wasm_bindgen(js_name = String)]
            pub fn to_string(value: &JsValue) -> String;
        }

        to_string(&self.0).fmt(f)
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Creates a JavaScript `Error` with a given message.
    pub fn new<T: std::fmt::Display>(msg: T) -> Self {
        Error(JsError::new(&msg.to_string()).into())
    }
}

impl serde::ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::new(msg)
    }
}

impl serde::de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::new(msg)
    }

    // paired-mls (docs/ENGINE.md S1): serde's default texts, with
    // `Unexpected` written by `Unexpected` below, so that serde's
    // `Display for Unexpected` and through it core's float formatting
    // (flt2dec, ~18 KB of wasm) are not linked.
    fn invalid_type(unexp: serde::de::Unexpected, exp: &dyn serde::de::Expected) -> Self {
        Error::new(format_args!("invalid type: {}, expected {}", Unexpected(unexp), exp))
    }

    fn invalid_value(unexp: serde::de::Unexpected, exp: &dyn serde::de::Expected) -> Self {
        Error::new(format_args!("invalid value: {}, expected {}", Unexpected(unexp), exp))
    }
}

/// serde's `Display for Unexpected`, word for word, except that a float is
/// written from JavaScript's `String(number)` (the same shortest digits that
/// round-trip, closest to the value) in the form of Rust's `{}` of an `f64`.
struct Unexpected<'a>(serde::de::Unexpected<'a>);

impl std::fmt::Display for Unexpected<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        use serde::de::Unexpected::*;
        match self.0 {
            Bool(b) => write!(formatter, "boolean `{}`", b),
            Unsigned(i) => write!(formatter, "integer `{}`", i),
            Signed(i) => write!(formatter, "integer `{}`", i),
            Float(f) => write!(formatter, "floating point `{}`", float_with_decimal_point(f)),
            Char(c) => write!(formatter, "character `{}`", c),
            Str(s) => write!(formatter, "string {:?}", s),
            Bytes(_) => formatter.write_str("byte array"),
            Unit => formatter.write_str("unit value"),
            Option => formatter.write_str("Option value"),
            NewtypeStruct => formatter.write_str("newtype struct"),
            Seq => formatter.write_str("sequence"),
            Map => formatter.write_str("map"),
            Enum => formatter.write_str("enum"),
            UnitVariant => formatter.write_str("unit variant"),
            NewtypeVariant => formatter.write_str("newtype variant"),
            TupleVariant => formatter.write_str("tuple variant"),
            StructVariant => formatter.write_str("struct variant"),
            Other(other) => formatter.write_str(other),
        }
    }
}

/// What serde's `WithDecimalPoint(f)` displays: Rust's `{}` of `f` (`NaN`,
/// `inf`, `-inf`, or the decimal digits without an exponent), with `.0`
/// after a finite value that has no decimal point.
fn float_with_decimal_point(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.into();
    }
    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_name = String)]
        fn number_to_string(value: f64) -> String;
    }
    let mut out = rust_display_of_js_number(f, &number_to_string(f.abs()));
    if !out.contains('.') {
        out.push_str(".0");
    }
    out
}

/// Rust's `{}` of a finite `value` from JavaScript's `String` of its
/// absolute value (`"150"`, `"0.000015"`, `"1.5e+300"`, `"5e-324"`). Both
/// give the shortest digits that read back as the value, the closest of
/// them; Rust writes them without an exponent, a negative zero as `-0`,
/// and when the value lies exactly halfway between two such digit strings
/// it takes the larger, where JavaScript takes the even one.
#[doc(hidden)]
pub fn rust_display_of_js_number(value: f64, js: &str) -> String {
    // The significant digits; the value is 0.<digits> times ten to `point`.
    let mut digits = Vec::with_capacity(24);
    let mut point: i32 = 0;
    let mut after_point = false;
    let js = js.as_bytes();
    let mut i = 0;
    while i < js.len() && js[i] != b'e' {
        match js[i] {
            b'.' => after_point = true,
            b'0' if digits.is_empty() => point -= after_point as i32,
            c => {
                digits.push(c);
                point += !after_point as i32;
            }
        }
        i += 1;
    }
    if i < js.len() {
        let mut exponent = 0i32;
        for &c in &js[i + 1..] {
            if c.is_ascii_digit() {
                exponent = exponent * 10 + i32::from(c - b'0');
            }
        }
        point += if js.get(i + 1) == Some(&b'-') { -exponent } else { exponent };
    }
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.last().is_some_and(|last| last % 2 == 0) && halfway_above(value.abs(), &digits, point) {
        *digits.last_mut().unwrap_or(&mut 0) += 1;
    }
    let mut out = String::with_capacity(digits.len() + 8);
    if value.is_sign_negative() {
        out.push('-');
    }
    if digits.is_empty() {
        out.push('0');
        return out;
    }
    if point <= 0 {
        out.push_str("0.");
        for _ in point..0 {
            out.push('0');
        }
    }
    for (at, &c) in digits.iter().enumerate() {
        if at as i32 == point && point > 0 {
            out.push('.');
        }
        out.push(char::from(c));
    }
    for _ in digits.len() as i32..point {
        out.push('0');
    }
    out
}

/// Whether `value` (finite, positive) is exactly `0.<digits> + 1/2` units
/// of the last digit, times ten to `point`: 2 * value == (2 * digits + 1)
/// * 10^m with m = point - digits.len(), compared as odd part and power of
/// two (value = odd * 2^e; 10^m = 5^m * 2^m).
fn halfway_above(value: f64, digits: &[u8], point: i32) -> bool {
    fn times_five_to(mut x: u128, n: u32) -> Option<u128> {
        for _ in 0..n {
            x = x.checked_mul(5)?;
        }
        Some(x)
    }
    let mut d: u128 = 0;
    for &c in digits {
        d = d * 10 + u128::from(c - b'0');
    }
    let bits = value.to_bits();
    let (frac, biased) = (bits & ((1 << 52) - 1), ((bits >> 52) & 0x7ff) as i32);
    let (mant, exp2) = if biased == 0 { (frac, -1074) } else { (frac | 1 << 52, biased - 1075) };
    if mant == 0 {
        return false;
    }
    let zeros = mant.trailing_zeros() as i32;
    let m = point - digits.len() as i32;
    let (five_left, five_right) = (m.min(0).unsigned_abs(), m.max(0) as u32);
    let left = times_five_to(u128::from(mant >> zeros), five_left);
    let right = times_five_to(2 * d + 1, five_right);
    matches!((left, right), (Some(l), Some(r)) if l == r) && exp2 + 1 + zeros + five_left as i32 == five_right as i32
}

/// This conversion is needed for `?` to just work when using wasm-bindgen
/// imports that return JavaScript exceptions as `Result<T, JsValue>`.
impl From<JsValue> for Error {
    fn from(error: JsValue) -> Error {
        Error(error)
    }
}

// This conversion is needed for `?` to just work in wasm-bindgen exports
// that return `Result<T, JsValue>` to throw JavaScript exceptions.
impl From<Error> for JsValue {
    fn from(error: Error) -> JsValue {
        error.0
    }
}
