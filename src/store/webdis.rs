//! Webdis: Redis commands as HTTP paths (`/MGET/k1/k2.json`), replies as JSON.
//!
//! JSON, not `.raw`: Debian's Webdis 0.1.9 drops nil elements from a raw MGET reply
//! (`*2\r\n$2\r\n90\r\n` for one missing key), which would hide which provider's load is
//! missing; its JSON keeps them (`{"MGET":[null,"90"]}`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::StoreError;

/// `/[db/]CMD/arg/arg.json`, each argument percent-encoded so that `/`, `.` and `%` inside keys
/// cannot split or end the path.
pub fn command_path(database: Option<u32>, args: &[&str]) -> String {
    let database = database.map(|db| format!("/{db}")).unwrap_or_default();
    let args: String = args
        .iter()
        .map(|arg| format!("/{}", percent_encoded(arg)))
        .collect();
    format!("{database}{args}.json")
}

fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~' | b':') {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// `{"MGET":["90","10",null]}`. Webdis reports a Redis error as `{"MGET":[false,"ERR …"]}`.
pub fn parse_json_reply(body: &[u8]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    parse_named_json_reply(body, "MGET")
}

/// A Webdis reply `{"<command>": [values…]}` whose list is flat (Webdis 0.1.9 writes a nested
/// list as `null`).
pub fn parse_named_json_reply(
    body: &[u8],
    command: &str,
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| StoreError::BadReply(format!("invalid Webdis JSON: {err}")))?;
    let items = value
        .get(command)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            // `{value}` would link serde_json's pretty printer as well.
            let text = serde_json::to_string(&value).unwrap_or_default();
            StoreError::BadReply(format!("no {command} list in {text}"))
        })?;
    if let [Value::Bool(false), Value::String(message)] = items.as_slice() {
        return Err(StoreError::BadReply(format!("error reply: {message}")));
    }
    Ok(items
        .iter()
        .map(|item| match item {
            Value::String(text) => Some(text.as_bytes().to_vec()),
            Value::Number(number) => Some(number.to_string().into_bytes()),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_selects_database_and_escapes_keys() {
        assert_eq!(command_path(None, &["MGET", "a", "b"]), "/MGET/a/b.json");
        assert_eq!(
            command_path(Some(3), &["MGET", "ai_metric:x.y", "50%"]),
            "/3/MGET/ai_metric:x%2Ey/50%25.json"
        );
    }

    #[test]
    fn basic_authorization_is_rfc_7617() {
        // RFC 7617's own example.
        assert_eq!(
            basic_authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn json_reply_keeps_strings_numbers_and_nulls() {
        assert_eq!(
            parse_json_reply(br#"{"MGET":["90",10,null,true]}"#).unwrap(),
            vec![Some(b"90".to_vec()), Some(b"10".to_vec()), None, None]
        );
    }

    #[test]
    fn json_errors_are_bad_replies() {
        assert_eq!(
            parse_json_reply(br#"{"MGET":[false,"ERR unknown command"]}"#).unwrap_err(),
            StoreError::BadReply("error reply: ERR unknown command".into())
        );
        assert!(matches!(
            parse_json_reply(br#"{"GET":"x"}"#),
            Err(StoreError::BadReply(_))
        ));
        assert!(matches!(
            parse_json_reply(b"{"),
            Err(StoreError::BadReply(_))
        ));
    }
}
