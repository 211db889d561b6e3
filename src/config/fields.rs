//! A path-aware reader over a JSON object: every error names the field it is about, and a
//! field the reader does not know is refused (a typo must not silently switch a feature off).

use serde_json::{Map, Value};

use super::ConfigError;
use crate::float_text::float_text;

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub struct Fields<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Reads `value` as an object whose keys are all in `known` (or start with `_` when
    /// `allow_underscore`, for Higress's own `_rules_`/`_match_*_` keys handled elsewhere).
    pub fn new(
        value: &'a Value,
        path: &str,
        known: &[&str],
        allow_underscore: bool,
    ) -> Result<Self, ConfigError> {
        let map = value.as_object().ok_or_else(|| {
            ConfigError::at(path, format!("must be a mapping, got {}", kind(value)))
        })?;
        for key in map.keys() {
            if known.contains(&key.as_str()) || (allow_underscore && key.starts_with('_')) {
                continue;
            }
            return Err(ConfigError::at(
                &join(path, key),
                format!("unknown field; known fields: {}", known.join(", ")),
            ));
        }
        Ok(Self {
            path: path.to_string(),
            map,
        })
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// An error about `key`. Out of line: error paths are most of the configuration code.
    #[inline(never)]
    pub fn error(&self, key: &str, reason: String) -> ConfigError {
        ConfigError::at(&self.path(key), reason)
    }

    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    pub fn string(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(other) => Err(self.error(key, format!("must be a string, got {}", kind(other)))),
        }
    }

    /// A string that, when present, must not be empty.
    pub fn non_empty_string(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.string(key)? {
            Some(text) if text.trim().is_empty() => {
                Err(self.error(key, "must not be empty".into()))
            }
            other => Ok(other),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => {
                Err(self.error(key, format!("must be true or false, got {}", kind(other))))
            }
        }
    }

    pub fn required_string(&self, key: &str) -> Result<&'a str, ConfigError> {
        self.non_empty_string(key)?
            .ok_or_else(|| self.error(key, "required".into()))
    }

    /// A whole number within `min..=max`.
    pub fn integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        let Some(value) = self.value(key) else {
            return Ok(None);
        };
        match value.as_u64() {
            Some(number) if (min..=max).contains(&number) => Ok(Some(number)),
            _ => Err(self.error(
                key, // `to_string` is `{value}` without linking the pretty printer as well.
                format!(
                    "must be a whole number from {min} to {max}, got {}",
                    serde_json::to_string(value).unwrap_or_default()
                ),
            )),
        }
    }
}

impl Fields<'_> {
    /// A finite number within `min..=max`.
    pub fn float(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, ConfigError> {
        let Some(value) = self.value(key) else {
            return Ok(None);
        };
        match value.as_f64() {
            Some(number) if (min..=max).contains(&number) => Ok(Some(number)),
            _ => Err(self.error(
                key,
                format!(
                    "must be a number from {} to {}, got {}",
                    float_text(min),
                    float_text(max),
                    serde_json::to_string(value).unwrap_or_default()
                ),
            )),
        }
    }
}

/// Most entries a configuration list may hold (providers, a pool's backends, a provider's
/// `api_tokens`, `_rules_`). Far beyond any gateway's need, it keeps the checks that compare
/// each entry with the ones before it (duplicates) from growing with the square of an
/// arbitrary input.
pub const MAX_LIST_ITEMS: usize = 1024;

/// Refuses a list longer than `MAX_LIST_ITEMS`, naming it.
pub fn check_list_length(items: &[Value], path: &str) -> Result<(), ConfigError> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(ConfigError::at(
            path,
            format!(
                "{} entries; at most {MAX_LIST_ITEMS} are accepted",
                items.len()
            ),
        ));
    }
    Ok(())
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
