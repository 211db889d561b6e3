//! A Redis hash per provider (`running`, `waiting`, `cache_ratio` fields, names configurable),
//! every provider read in one round trip: an EVAL whose script answers one HMGET per key. The
//! reply comes as raw RESP (Higress) or as Webdis JSON, `{"EVAL":[["3","1",null],null]}`.

use serde_json::Value;

use super::ratio;
use crate::load::{Load, Loads};
use crate::store::{parse_load, parse_rows_reply, Row};

/// The hash fields read when the configuration names none, in the order the reply is read:
/// running, waiting, cache ratio (a fourth field, if given, is the KV usage).
pub const DEFAULT_HASH_FIELDS: [&str; 3] = ["running", "waiting", "cache_ratio"];

/// One HMGET of the fields (ARGV) per key (KEYS), in key order. `pcall` so that one key that
/// is not a hash (WRONGTYPE) is one unknown provider, `false` (a nil row), rather than the
/// whole script failing and every provider with it.
pub const HASH_SCRIPT: &str = "local rows = {} \
    for i, key in ipairs(KEYS) do \
    local row = redis.pcall('HMGET', key, unpack(ARGV)) \
    if row.err then row = false end \
    rows[i] = row \
    end \
    return rows";

/// `EVAL <script> <number of keys> key.. field..`: the arguments of the one command that reads
/// every provider's hash. `fields` in the order [`parse_hash_loads`] reads them: running,
/// waiting, cache ratio, and optionally KV usage.
pub fn hash_eval_args(keys: &[&str], fields: &[&str]) -> Vec<String> {
    let mut args = Vec::with_capacity(3 + keys.len() + fields.len());
    args.push("EVAL".to_owned());
    args.push(HASH_SCRIPT.to_owned());
    args.push(keys.len().to_string());
    args.extend(keys.iter().map(|key| (*key).to_owned()));
    args.extend(fields.iter().map(|field| (*field).to_owned()));
    args
}

/// The load of each of `providers` hashes, from the EVAL reply as raw RESP or Webdis JSON
/// (a body starting with `{`). Values are numbers written as text: an unreadable value is that
/// field unknown, and an unknown running figure (or a missing hash) an unknown provider.
pub fn parse_hash_loads(body: &[u8], providers: usize) -> Result<Loads, String> {
    let rows = if body.first() == Some(&b'{') {
        webdis_rows(body)?
    } else {
        parse_rows_reply(body).map_err(|err| err.to_string())?
    };
    if rows.len() != providers {
        return Err(format!(
            "hash reply has {} rows for {providers} providers",
            rows.len()
        ));
    }
    Ok(rows.iter().map(|row| row_load(row.as_deref())).collect())
}

fn row_load(row: Option<&[Option<Vec<u8>>]>) -> Option<Load> {
    let row = row?;
    let field = |index: usize| parse_load(row.get(index)?.as_deref());
    Some(Load {
        running: field(0)?,
        waiting: field(1),
        cache_ratio: field(2).and_then(ratio),
        kv_usage: field(3).and_then(ratio),
    })
}

/// `{"EVAL":[["3","1",null],null]}`; Webdis reports a Redis error as `{"EVAL":[false,"ERR …"]}`.
fn webdis_rows(body: &[u8]) -> Result<Vec<Row>, String> {
    let reply: Value = serde_json::from_slice(body)
        .map_err(|err| format!("hash reply is not Webdis JSON: {err}"))?;
    let items = reply
        .get("EVAL")
        .and_then(Value::as_array)
        .ok_or("hash reply from Webdis has no EVAL list")?;
    if let [Value::Bool(false), Value::String(message)] = items.as_slice() {
        return Err(format!("hash reply is an error: {message}"));
    }
    Ok(items.iter().map(webdis_row).collect())
}

fn webdis_row(item: &Value) -> Row {
    let values = item.as_array()?;
    Some(
        values
            .iter()
            .map(|value| match value {
                Value::String(text) => Some(text.as_bytes().to_vec()),
                Value::Number(number) => Some(number.to_string().into_bytes()),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(running: f64, waiting: Option<f64>, cache_ratio: Option<f64>) -> Option<Load> {
        Some(Load {
            running,
            waiting,
            cache_ratio,
            kv_usage: None,
        })
    }

    #[test]
    fn eval_args_give_the_key_count_then_keys_then_fields() {
        let args = hash_eval_args(&["lb:a", "lb:b"], &DEFAULT_HASH_FIELDS);
        assert_eq!(
            args,
            [
                "EVAL",
                HASH_SCRIPT,
                "2",
                "lb:a",
                "lb:b",
                "running",
                "waiting",
                "cache_ratio"
            ]
        );
    }

    #[test]
    fn script_answers_one_hmget_of_every_field_per_key_in_key_order() {
        let script = HASH_SCRIPT;
        assert!(script.contains("for i, key in ipairs(KEYS) do"), "{script}");
        assert!(
            script.contains("redis.pcall('HMGET', key, unpack(ARGV))"),
            "{script}"
        );
        assert!(script.contains("rows[i] = row"), "{script}");
        assert!(script.ends_with("return rows"), "{script}");
        // A failed HMGET becomes a nil row, not an error table inside the reply.
        assert!(
            script.contains("if row.err then row = false end"),
            "{script}"
        );
        // Field names come only from ARGV, so configured names work unchanged.
        for field in DEFAULT_HASH_FIELDS {
            assert!(!script.contains(field), "{script}");
        }
    }

    #[test]
    fn resp_and_webdis_replies_give_the_same_loads() {
        let resp = b"*3\r\n*3\r\n$1\r\n3\r\n$1\r\n1\r\n$3\r\n0.4\r\n*3\r\n$1\r\n5\r\n$-1\r\n$-1\r\n*3\r\n$-1\r\n$-1\r\n$-1\r\n";
        let webdis = br#"{"EVAL":[["3","1","0.4"],["5",null,null],[null,null,null]]}"#;
        let expected = vec![load(3.0, Some(1.0), Some(0.4)), load(5.0, None, None), None];
        assert_eq!(parse_hash_loads(resp, 3).unwrap(), expected);
        assert_eq!(parse_hash_loads(webdis, 3).unwrap(), expected);
    }

    #[test]
    fn replies_of_a_real_redis_parse_in_resp2_and_resp3() {
        // Redis 7.0.15 running HASH_SCRIPT over keys: a hash with all three fields, a missing
        // key, a string key (WRONGTYPE), the first hash again.
        let resp2 = b"*4\r\n*3\r\n$1\r\n3\r\n$1\r\n1\r\n$3\r\n0.4\r\n*3\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n*3\r\n$1\r\n3\r\n$1\r\n1\r\n$3\r\n0.4\r\n";
        let full = load(3.0, Some(1.0), Some(0.4));
        assert_eq!(
            parse_hash_loads(resp2, 4).unwrap(),
            vec![full, None, None, full]
        );
        // After HELLO 3: a missing key and a string key.
        let resp3 = b"*2\r\n*3\r\n_\r\n_\r\n_\r\n_\r\n";
        assert_eq!(parse_hash_loads(resp3, 2).unwrap(), vec![None, None]);
    }

    #[test]
    fn a_key_that_is_missing_or_not_a_hash_is_an_unknown_provider() {
        // The script turns a WRONGTYPE error into a nil row.
        assert_eq!(
            parse_hash_loads(b"*2\r\n$-1\r\n*1\r\n$1\r\n2\r\n", 2).unwrap(),
            vec![None, load(2.0, None, None)]
        );
        assert_eq!(
            parse_hash_loads(br#"{"EVAL":[null,["2"]]}"#, 2).unwrap(),
            vec![None, load(2.0, None, None)]
        );
    }

    #[test]
    fn unreadable_values_are_unknown_and_an_unknown_running_hides_the_provider() {
        let webdis = br#"{"EVAL":[["2","-1","1.5"],["2","x","0.3"],["busy","1","0.5"],[-1,"1","0.5"],[4,2,"NaN"]]}"#;
        assert_eq!(
            parse_hash_loads(webdis, 5).unwrap(),
            vec![
                load(2.0, None, None),
                load(2.0, None, Some(0.3)),
                None,
                None,
                load(4.0, Some(2.0), None),
            ]
        );
    }

    #[test]
    fn a_fourth_field_is_the_kv_usage() {
        let webdis = br#"{"EVAL":[["1","0","0.2","0.9"],["1","0","0.2","2"]]}"#;
        let loads = parse_hash_loads(webdis, 2).unwrap();
        assert_eq!(loads[0].unwrap().kv_usage, Some(0.9));
        assert_eq!(loads[1].unwrap().kv_usage, None);
    }

    #[test]
    fn errors_and_replies_of_the_wrong_size_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"*1\r\n*1\r\n$1\r\n1\r\n",
                "hash reply has 1 rows for 2 providers",
            ),
            (
                b"-NOSCRIPT No matching script\r\n",
                "unreadable store reply: error reply: NOSCRIPT No matching script",
            ),
            (
                br#"{"EVAL":[false,"ERR unknown command 'EVAL'"]}"#,
                "hash reply is an error: ERR unknown command 'EVAL'",
            ),
            (br#"{"GET":"x"}"#, "hash reply from Webdis has no EVAL list"),
        ];
        for (body, message) in cases {
            assert_eq!(
                parse_hash_loads(body, 2).unwrap_err(),
                *message,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let err = parse_hash_loads(b"{", 2).unwrap_err();
        assert!(err.starts_with("hash reply is not Webdis JSON"), "{err}");
    }
}
