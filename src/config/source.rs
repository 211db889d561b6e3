//! Turns the plugin's configuration bytes into a JSON value. Higress delivers JSON; upstream
//! Envoy delivers whatever the operator wrote in `configuration` (YAML or JSON).

use serde_json::{Map, Value};

use super::{yaml, ConfigError};

pub fn parse_document(bytes: &[u8]) -> Result<Value, ConfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|err| ConfigError::root(format!("not UTF-8 ({err})")))?;
    let text = text.trim_start_matches('\u{feff}');
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    if trimmed.starts_with('{') {
        // `from_slice`, not `from_str`: one deserializer in the module (the Webdis reply uses
        // it too) instead of two, ~8 KB; the text is valid UTF-8 either way.
        return serde_json::from_slice(trimmed.as_bytes())
            .map_err(|err| ConfigError::root(format!("invalid JSON: {err}")));
    }
    // The untrimmed text: error lines count from the top, and `|+` keeps final line breaks.
    match yaml::parse(text) {
        // Only comments, like an empty configuration, configure nothing.
        Ok(Value::Null) => Ok(Value::Object(Map::new())),
        Ok(document) => Ok(document),
        Err(err) => Err(ConfigError::root(format!("invalid YAML: {err}"))),
    }
}
