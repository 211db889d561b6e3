//! The YAML 1.2 core schema: what a plain scalar means (null, boolean, integer, float or
//! string), and which of those may name a mapping key.

use serde_json::{Number, Value};

pub(super) fn resolve(text: &str) -> Result<Value, String> {
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => match number(text)? {
            Some(number) => Value::Number(number),
            None => Value::String(text.to_string()),
        },
    })
}

/// Keys are strings; integer and boolean keys read as their canonical text (`0x10` is "16").
pub(super) fn key_text(key: Value) -> Result<String, String> {
    match key {
        Value::String(text) => Ok(text),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Number(number) if !number.is_f64() => Ok(number.to_string()),
        other => Err(format!(
            "mapping keys must be strings, not {}",
            serde_json::to_string(&other).unwrap_or_default()
        )),
    }
}

fn number(text: &str) -> Result<Option<Number>, String> {
    if let Some(digits) = text.strip_prefix("0x") {
        return radix(text, digits, 16);
    }
    if let Some(digits) = text.strip_prefix("0o") {
        return radix(text, digits, 8);
    }
    let unsigned = unsigned(text);
    let not_finite = || format!("{text:?} is not a finite number");
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Err(not_finite());
    }
    if is_digits(unsigned) {
        if let Ok(int) = text.parse::<i64>() {
            return Ok(Some(int.into()));
        }
        if let Ok(int) = text.parse::<u64>() {
            return Ok(Some(int.into()));
        }
    } else if !is_float(unsigned) {
        return Ok(None);
    }
    // A float, or a whole number past 64 bits (JSON readers make those floats too).
    match text.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(number) => Ok(Some(number)),
        None => Err(not_finite()),
    }
}

fn radix(text: &str, digits: &str, radix: u32) -> Result<Option<Number>, String> {
    if digits.is_empty() || !digits.chars().all(|digit| digit.is_digit(radix)) {
        return Ok(None);
    }
    match u64::from_str_radix(digits, radix) {
        Ok(int) => Ok(Some(int.into())),
        Err(_) => Err(format!("{text:?} does not fit in 64 bits")),
    }
}

fn unsigned(text: &str) -> &str {
    text.strip_prefix('-')
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text)
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the sign already removed.
fn is_float(text: &str) -> bool {
    let (mantissa, exponent) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    let exponent = unsigned(exponent);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    is_digits(exponent)
        && all_digits(whole)
        && all_digits(fraction)
        && (whole, fraction) != ("", "")
}
