//! Placeholder until the one-pass scanner lands.
use super::Skip;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyFacts {
    pub model: Option<String>,
    pub streaming: bool,
    pub prefix_hash: Option<u64>,
}

pub fn body_facts(body: &[u8], prefix_bytes: usize) -> Result<BodyFacts, Skip> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| Skip::NotJson {
        offset: 0,
        reason: "stub",
    })?;
    let object = value.as_object().ok_or(Skip::NotAnObject)?;
    let prefix_hash = ["messages", "prompt", "input"]
        .iter()
        .find_map(|key| object.get(*key))
        .filter(|_| prefix_bytes > 0)
        .map(|v| {
            let text = v.to_string();
            let bytes = &text.as_bytes()[..text.len().min(prefix_bytes)];
            bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        });
    Ok(BodyFacts {
        model: object
            .get("model")
            .and_then(|m| m.as_str())
            .map(str::to_string),
        streaming: object.get("stream") == Some(&serde_json::Value::Bool(true)),
        prefix_hash,
    })
}
