//! Turns the plugin's configuration bytes into a JSON value. Every host hands JSON: Higress and
//! Istio serialize the plugin configuration as JSON, and in upstream Envoy the operator writes it
//! in the `configuration` `StringValue`. YAML is not read in the module (a YAML reader costs
//! 67 KB of its 512 KB budget); YAML text is refused with what to write instead.

use serde_json::{Map, Value};

use super::ConfigError;

pub fn parse_document(bytes: &[u8]) -> Result<Value, ConfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|err| ConfigError::root(format!("not UTF-8 ({err})")))?;
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(text.as_bytes()).map_err(|err| {
        let hint = if text.starts_with('{') {
            ""
        } else {
            " (YAML is not read: write the configuration as JSON, which a YAML block scalar \
             such as `value: |` holds as it is)"
        };
        ConfigError::root(format!("invalid JSON: {err}{hint}"))
    })
}
