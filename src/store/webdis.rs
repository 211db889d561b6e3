//! Webdis: Redis commands as HTTP paths (`/MGET/k1/k2.json`), replies as JSON.
//!
//! JSON, not `.raw`: Debian's Webdis 0.1.9 drops nil elements from a raw MGET reply
//! (`*2\r\n$2\r\n90\r\n` for one missing key), which would hide which provider's load is
//! missing; its JSON keeps them (`{"MGET":[null,"90"]}`).

use serde_json::Value;

use super::StoreError;

/// `/[db/]CMD/arg/arg.json`, each argument percent-encoded so that `/`, `.` and `%` inside keys
/// cannot split or end the path.
pub fn command_path(database: Option<u32>, args: &[&str]) -> String {
    let mut path = String::new();
    if let Some(db) = database {
        path.push_str(&format!("/{db}"));
    }
    for arg in args {
        path.push('/');
        percent_encode(arg, &mut path);
    }
    path.push_str(".json");
    path
}

fn percent_encode(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~' | b':') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let group = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(ALPHABET[(group >> (18 - 6 * index) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        values.push(match item {
            Value::String(text) => Some(text.as_bytes().to_vec()),
            Value::Number(number) => Some(number.to_string().into_bytes()),
            _ => None,
        });
    }
    Ok(values)
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
    fn base64_pads_like_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
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
