//! Turns the plugin's configuration bytes into a JSON value. Higress delivers JSON; upstream
//! Envoy delivers whatever the operator wrote in `configuration` (YAML or JSON).

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

use super::ConfigError;

pub fn parse_document(bytes: &[u8]) -> Result<Value, ConfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|err| ConfigError::root(format!("not UTF-8 ({err})")))?;
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    if trimmed.starts_with('{') {
        // `from_slice`, not `from_str`: one deserializer in the module (the Webdis reply uses
        // it too) instead of two, ~8 KB; the text is valid UTF-8 either way.
        return serde_json::from_slice(trimmed.as_bytes())
            .map_err(|err| ConfigError::root(format!("invalid JSON: {err}")));
    }
    let documents = YamlLoader::load_from_str(trimmed)
        .map_err(|err| ConfigError::root(format!("invalid YAML: {err}")))?;
    match documents.as_slice() {
        [] => Ok(Value::Object(Map::new())),
        [document] => yaml_to_json(document, ""),
        _ => Err(ConfigError::root(
            "several YAML documents; expected one".to_string(),
        )),
    }
}

fn yaml_to_json(node: &Yaml, path: &str) -> Result<Value, ConfigError> {
    Ok(match node {
        Yaml::Null => Value::Null,
        Yaml::Boolean(flag) => Value::Bool(*flag),
        Yaml::Integer(int) => Value::Number(Number::from(*int)),
        Yaml::Real(text) => {
            let real = node
                .as_f64()
                .and_then(Number::from_f64)
                .ok_or_else(|| ConfigError::at(path, format!("{text:?} is not a finite number")))?;
            Value::Number(real)
        }
        Yaml::String(text) => Value::String(text.clone()),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| yaml_to_json(item, &format!("{path}[{index}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let key = match key {
                    Yaml::String(text) => text.clone(),
                    Yaml::Integer(int) => int.to_string(),
                    Yaml::Boolean(flag) => flag.to_string(),
                    _ => return Err(ConfigError::at(path, "mapping keys must be strings".into())),
                };
                let child = super::fields::join(path, &key);
                object.insert(key, yaml_to_json(value, &child)?);
            }
            Value::Object(object)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(ConfigError::at(
                path,
                "YAML aliases are not supported".into(),
            ))
        }
    })
}
