//! YAML configurations (what an operator writes in Envoy's `configuration` `StringValue`) read
//! into a `serde_json::Value`, the form the document types are deserialized from. The text is
//! parsed by saphyr's YAML 1.2 parser and its scalars resolved by saphyr's core schema; this
//! module only builds the value: one document, string keys, no duplicate keys, finite numbers,
//! and nesting bounded (each level costs stack, and wasm stacks are small).

use std::borrow::Cow;

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};

/// Deeper nesting is refused.
const MAX_DEPTH: usize = 64;
/// Most values aliases may copy in all: a few nested anchors must not expand exponentially.
const MAX_ALIAS_COPIES: usize = 100_000;

/// Reads one YAML document; an empty one (only blank lines or comments) is `null`. Errors name
/// the line.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut reader = Reader::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|err: ScanError| err.to_string())?;
        reader
            .read(event)
            .map_err(|reason| format!("line {}: {reason}", span_line(&span)))?;
    }
    Ok(reader.document.unwrap_or(Value::Null))
}

fn span_line(span: &Span) -> usize {
    span.start.line()
}

/// A collection being read: a list, or a mapping with the key read last, if its value is next.
enum Open {
    List(Vec<Value>, usize),
    Mapping(Map<String, Value>, Option<String>, usize),
}

#[derive(Default)]
struct Reader {
    open: Vec<Open>,
    /// Anchored values by id (few: a Vec, not a map type instantiated for this alone).
    anchors: Vec<(usize, Value)>,
    alias_copies: usize,
    documents: usize,
    document: Option<Value>,
}

impl Reader {
    fn read(&mut self, event: Event<'_>) -> Result<(), String> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err("several documents; expected one".into());
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(text, style, tag.as_ref())?;
                self.complete(value, anchor)
            }
            Event::Alias(anchor) => {
                let value = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(id, _)| *id == anchor)
                    .map(|(_, value)| value.clone())
                    .ok_or("an alias (*) names no anchor")?;
                self.alias_copies += 1 + nodes(&value);
                if self.alias_copies > MAX_ALIAS_COPIES {
                    return Err(format!("aliases copy more than {MAX_ALIAS_COPIES} values"));
                }
                self.complete(value, 0)
            }
            Event::SequenceStart(anchor, _) => self.open(Open::List(Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => self.open(Open::Mapping(Map::new(), None, anchor)),
            Event::SequenceEnd | Event::MappingEnd => match self.open.pop() {
                Some(Open::List(items, anchor)) => self.complete(Value::Array(items), anchor),
                Some(Open::Mapping(entries, _, anchor)) => {
                    self.complete(Value::Object(entries), anchor)
                }
                None => Err("a collection ends that never started".into()),
            },
            _ => Ok(()),
        }
    }

    fn open(&mut self, collection: Open) -> Result<(), String> {
        if self.open.len() >= MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        self.open.push(collection);
        Ok(())
    }

    /// A value read whole: an item of the list, a key or a value of the mapping being read, or
    /// the document.
    fn complete(&mut self, value: Value, anchor: usize) -> Result<(), String> {
        if anchor > 0 {
            self.anchors.push((anchor, value.clone()));
        }
        match self.open.last_mut() {
            None => self.document = Some(value),
            Some(Open::List(items, _)) => items.push(value),
            Some(Open::Mapping(_, key @ None, _)) => *key = Some(key_text(value)?),
            Some(Open::Mapping(entries, key @ Some(_), _)) => {
                let name = key.take().unwrap_or_default();
                if entries.contains_key(&name) {
                    return Err(format!("duplicate key {name:?}"));
                }
                entries.insert(name, value);
            }
        }
        Ok(())
    }
}

/// A scalar by the core schema: quoted ones are strings, plain ones may be null, booleans or
/// numbers. A number JSON cannot hold (infinite, NaN) is refused rather than read as text.
fn scalar(
    text: Cow<'_, str>,
    style: ScalarStyle,
    tag: Option<&Cow<'_, Tag>>,
) -> Result<Value, String> {
    if style == ScalarStyle::Plain && tag.is_none() {
        // Whole numbers past i64 (saphyr's integer) up to u64, as JSON reads them.
        if let Ok(number) = text.parse::<u64>() {
            return Ok(Value::Number(number.into()));
        }
    }
    let shown = text.to_string();
    match Scalar::parse_from_cow_and_metadata(text, style, tag) {
        None => Err(format!("{shown:?} does not fit its tag")),
        Some(Scalar::Null) => Ok(Value::Null),
        Some(Scalar::Boolean(flag)) => Ok(Value::Bool(flag)),
        Some(Scalar::Integer(number)) => Ok(Value::Number(number.into())),
        Some(Scalar::FloatingPoint(number)) => Number::from_f64(number.into_inner())
            .map(Value::Number)
            .ok_or_else(|| format!("{shown:?} is not a finite number")),
        Some(Scalar::String(text)) => Ok(Value::String(text.into_owned())),
    }
}

/// Mapping keys are names: a number or boolean key reads as its text.
fn key_text(key: Value) -> Result<String, String> {
    match key {
        Value::String(text) => Ok(text),
        Value::Number(number) if number.is_i64() || number.is_u64() => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        other => Err(format!("mapping keys must be names, not {other}")),
    }
}

/// How many values a value holds, itself included.
fn nodes(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nodes).sum::<usize>(),
        Value::Object(entries) => 1 + entries.values().map(nodes).sum::<usize>(),
        _ => 1,
    }
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
