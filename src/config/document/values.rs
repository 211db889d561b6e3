//! Value types of the configuration document that check themselves as they are read: bounded
//! numbers, non-empty text, secrets (never quoted in an error), HTTP statuses, and the fields
//! that take one of two shapes. Their refusals keep the filter's own wording.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, StrDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A whole number within `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> Whole<MIN, MAX> {
    /// The number, for fields whose bound fits 32 bits.
    pub fn u32(self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Whole<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Written::checked(deserializer, &|value| whole(value, MIN, MAX)).map(Self)
    }
}

/// The check of every `Whole`, instantiated once rather than for each pair of bounds.
fn whole(value: Written, min: u64, max: u64) -> Result<u64, String> {
    match value {
        Written::Whole(number) if (min..=max).contains(&number) => Ok(number),
        _ => Err(format!(
            "must be a whole number from {min} to {max}, got {}",
            value.text()
        )),
    }
}

/// Any number from 0 to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpTo<const MAX: u64>(pub f64);

impl<'de, const MAX: u64> Deserialize<'de> for UpTo<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Written::checked(deserializer, &|value| up_to(value, MAX)).map(Self)
    }
}

fn up_to(value: Written, max: u64) -> Result<f64, String> {
    let number = match value {
        Written::Whole(number) => Some(number as f64),
        Written::Negative(number) => Some(number as f64),
        Written::Fraction(number) => Some(number),
        _ => None,
    };
    match number {
        Some(number) if (0.0..=max as f64).contains(&number) => Ok(number),
        _ => Err(format!(
            "must be a number from 0 to {max}, got {}",
            value.text()
        )),
    }
}

/// A string that is not empty (nor only spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_string(TextVisitor)
    }
}

/// Checks as it reads (not after), so that serde_json places a refusal just past the value
/// (config/error_path.rs names the field from there).
struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Text, E> {
        self.visit_string(text.to_string())
    }
    fn visit_string<E: de::Error>(self, text: String) -> Result<Text, E> {
        if text.trim().is_empty() {
            return Err(E::custom("must not be empty"));
        }
        Ok(Text(text))
    }
}

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password or API key: an error about it names the kind of value found, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Written::checked(deserializer, &|value| match value {
            Written::Text(text) => Ok(text),
            other => Err(format!("must be a string, got {}", other.kind())),
        })
        .map(Self)
    }
}

/// A provider's API keys: a list of secrets, refused without quoting any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets(pub Vec<Secret>);

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = deserializer.deserialize_any(SecretsVisitor)?;
        Ok(value)
    }
}

struct SecretsVisitor;

impl SecretsVisitor {
    fn refuse<E: de::Error>(found: &str) -> Result<Secrets, E> {
        Err(E::custom(format_args!(
            "must be a non-empty list of tokens, got {found}"
        )))
    }
}

impl<'de> Visitor<'de> for SecretsVisitor {
    type Value = Secrets;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-empty list of tokens")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Secrets, A::Error> {
        let mut secrets = Vec::new();
        while let Some(secret) = items.next_element()? {
            secrets.push(secret);
        }
        Ok(Secrets(secrets))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Secrets, E> {
        Self::refuse("a string")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secrets, E> {
        Self::refuse("a boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secrets, E> {
        Self::refuse("a number")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secrets, E> {
        Self::refuse("a number")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secrets, E> {
        Self::refuse("a number")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Secrets, E> {
        Self::refuse("null")
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Secrets, A::Error> {
        Self::refuse("a mapping")
    }
}

/// An HTTP status (`429`) or a class of them (`"5xx"`), as the range it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange(pub u16, pub u16);

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Written::checked(deserializer, &|value| {
            let range = match &value {
                Written::Whole(status) => Some(*status)
                    .filter(|status| (100..=599).contains(status))
                    .map(|status| (status as u16, status as u16)),
                Written::Text(class) => match class.as_bytes() {
                    [digit @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => {
                        let low = u16::from(digit - b'0') * 100;
                        Some((low, low + 99))
                    }
                    _ => None,
                },
                _ => None,
            };
            range.ok_or_else(|| {
                format!(
                    "{} is not a status (100 to 599) or a class like \"5xx\"",
                    value.text()
                )
            })
        })
        .map(|(low, high)| Self(low, high))
    }
}

/// A field written either as a bare value (a strategy's name, `probe: false`) or as a mapping
/// of settings; the mapping's own fields are read, and refused, with their paths.
#[derive(Debug, Clone, PartialEq)]
pub enum Either<Short, Long> {
    Short(Short),
    Long(Long),
}

impl<'de, Short, Long> Deserialize<'de> for Either<Short, Long>
where
    Short: Deserialize<'de>,
    Long: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EitherVisitor(PhantomData))
    }
}

struct EitherVisitor<Short, Long>(PhantomData<(Short, Long)>);

impl<'de, Short, Long> Visitor<'de> for EitherVisitor<Short, Long>
where
    Short: Deserialize<'de>,
    Long: Deserialize<'de>,
{
    type Value = Either<Short, Long>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name, true or false, or a mapping")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Short::deserialize(StrDeserializer::<E>::new(text)).map(Either::Short)
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Self::Value, E> {
        Short::deserialize(de::value::BoolDeserializer::<E>::new(flag)).map(Either::Short)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Long::deserialize(MapAccessDeserializer::new(map)).map(Either::Long)
    }
}

/// What was written where a number or a string belongs, kept to name it in an error. Read by
/// one small visitor rather than as a whole `serde_json::Value`.
enum Written {
    Whole(u64),
    Negative(i64),
    Fraction(f64),
    Text(String),
    Other(&'static str),
}

impl Written {
    /// As JSON writes it, or its kind for what is not a scalar.
    fn text(&self) -> String {
        match self {
            Written::Whole(number) => number.to_string(),
            Written::Negative(number) => number.to_string(),
            Written::Fraction(number) => {
                serde_json::Number::from_f64(*number).map_or_else(String::new, |n| n.to_string())
            }
            Written::Text(text) => serde_json::to_string(text).unwrap_or_default(),
            Written::Other(kind) => (*kind).to_string(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Written::Whole(_) | Written::Negative(_) | Written::Fraction(_) => "a number",
            Written::Text(_) => "a string",
            Written::Other(kind) => kind,
        }
    }
}

impl Written {
    /// Reads a value and checks it while serde_json is still at it, so that a refusal is placed
    /// just past the value (config/error_path.rs names the field from there).
    fn checked<'de, D: Deserializer<'de>, T>(
        deserializer: D,
        check: &dyn Fn(Written) -> Result<T, String>,
    ) -> Result<T, D::Error> {
        deserializer.deserialize_any(WrittenVisitor { check })
    }
}

struct WrittenVisitor<'a, T> {
    check: &'a dyn Fn(Written) -> Result<T, String>,
}

impl<T> WrittenVisitor<'_, T> {
    fn check<E: de::Error>(&self, value: Written) -> Result<T, E> {
        (self.check)(value).map_err(E::custom)
    }
}

impl<'de, T> Visitor<'de> for WrittenVisitor<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a string")
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<T, E> {
        self.check(Written::Whole(number))
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<T, E> {
        self.check(u64::try_from(number).map_or(Written::Negative(number), Written::Whole))
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<T, E> {
        self.check(Written::Fraction(number))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        self.check(Written::Text(text.to_string()))
    }
    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<T, E> {
        self.check(Written::Other(if flag { "true" } else { "false" }))
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        self.check(Written::Other("null"))
    }
    // Read to their end, so that the field's own check says what it wanted.
    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<T, A::Error> {
        while items.next_element::<de::IgnoredAny>()?.is_some() {}
        self.check(Written::Other("a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<T, A::Error> {
        while entries
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        self.check(Written::Other("a mapping"))
    }
}

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
