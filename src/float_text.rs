//! Floats as text without core's float formatter: `{}` on an `f64` links Grisu and Dragon with
//! their tables (~20 KB of wasm), while serde_json's shortest-form writer is linked anyway.

use std::fmt::Write as _;

/// 2^53: every whole number below it is an exact `f64`, so its digits are its shortest form.
const EXACT_WHOLE_NUMBERS: f64 = 9_007_199_254_740_992.0;

/// Appends `value` in a form `str::parse::<f64>` reads back bit for bit. Whole numbers below
/// 2^53 and decimals from 1e-5 up are written as `{}` writes them (`3`, `-0`, `0.25`); other
/// finite values in serde_json's shortest form, with an exponent where `{}` writes every digit
/// (`1e-7`, `1e+300`); and `NaN`, `inf`, `-inf` as `{}` does.
pub fn write_float(text: &mut String, value: f64) {
    if value.fract() == 0.0 && value.abs() < EXACT_WHOLE_NUMBERS {
        if value.is_sign_negative() {
            text.push('-');
        }
        // Writing to a String cannot fail.
        let _ = write!(text, "{}", value.abs() as u64);
    } else if let Some(number) = serde_json::Number::from_f64(value) {
        let _ = write!(text, "{number}");
    } else if value.is_nan() {
        text.push_str("NaN");
    } else if value > 0.0 {
        text.push_str("inf");
    } else {
        text.push_str("-inf");
    }
}

/// `write_float` into a new String.
pub fn float_text(value: f64) -> String {
    let mut text = String::new();
    write_float(&mut text, value);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn everyday_figures_read_as_display_writes_them() {
        for value in [
            0.0,
            -0.0,
            3.0,
            -7.0,
            0.25,
            1.5,
            0.1 + 0.2,
            1.0 / 3.0,
            12_345.678_9,
            1e-5,
        ] {
            assert_eq!(float_text(value), format!("{value}"));
        }
        for value in [
            1e6,
            123_456_789.0,
            4_503_599_627_370_495.5,
            9_007_199_254_740_991.0,
        ] {
            assert_eq!(float_text(value), format!("{value}"));
        }
        assert_eq!(float_text(f64::NAN), "NaN");
        assert_eq!(float_text(f64::INFINITY), "inf");
        assert_eq!(float_text(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn extreme_figures_use_an_exponent() {
        assert_eq!(float_text(1e-7), "1e-7");
        assert_eq!(float_text(1e300), "1e+300");
        assert_eq!(float_text(f64::MAX), "1.7976931348623157e+308");
    }

    #[test]
    fn every_finite_value_reads_back_bit_for_bit() {
        let mut rng = Rng::new(7);
        let mut values = vec![
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            9_007_199_254_740_992.0,
        ];
        for _ in 0..20_000 {
            values.push(f64::from_bits(rng.next_u64()));
            values.push(rng.below(1 << 53) as f64 / 1024.0);
        }
        for value in values.into_iter().filter(|value| value.is_finite()) {
            let text = float_text(value);
            let parsed: f64 = text.parse().unwrap();
            assert_eq!(
                parsed.to_bits(),
                value.to_bits(),
                "{value:?} written as {text}"
            );
        }
    }
}
