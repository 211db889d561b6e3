//! A Redis hash per provider (`running`, `waiting`, `cache_ratio` fields, names configurable),
//! every provider read in one round trip: an EVAL whose script answers every key's fields in one
//! flat list (key by key, the fields in order). Flat, because Webdis 0.1.9 writes a nested list
//! as `null` in its JSON. The reply comes as raw RESP (Higress) or as Webdis JSON,
//! `{"EVAL":["3","1",null,null,null,null]}`.

use crate::load::{Load, Loads};
use crate::store::{parse_load, parse_mget_reply, parse_named_json_reply};

use super::ratio;

/// The hash fields read when the configuration names none, in the order the reply is read:
/// running, waiting, cache ratio (a fourth field, if given, is the KV usage).
pub const DEFAULT_HASH_FIELDS: [&str; 3] = ["running", "waiting", "cache_ratio"];

/// Every field (ARGV) of every key (KEYS), key by key, in one flat list; a missing field is
/// `false` (nil in the reply). `pcall`, so that a key that is not a hash (WRONGTYPE) is one
/// unknown provider (all its fields nil) rather than the whole script failing.
pub const HASH_SCRIPT: &str = "local out = {} local n = 0 \
    for _, key in ipairs(KEYS) do \
    local row = redis.pcall('HMGET', key, unpack(ARGV)) \
    for j = 1, #ARGV do \
    n = n + 1 \
    if row.err then out[n] = false else out[n] = row[j] end \
    end \
    end \
    return out";

/// `EVAL <script> <number of keys> key.. field..`: the arguments of the one command that reads
/// every provider's hash. `fields` in the order [`parse_hash_loads`] reads them: running,
/// waiting, cache ratio, and optionally KV usage.
pub fn hash_eval_args(keys: &[&str], fields: &[&str]) -> Vec<String> {
    let head = [
        "EVAL".to_owned(),
        HASH_SCRIPT.to_owned(),
        keys.len().to_string(),
    ];
    head.into_iter()
        .chain(keys.iter().chain(fields).map(|arg| (*arg).to_owned()))
        .collect()
}

/// The load of each of `providers` hashes, from the EVAL reply as raw RESP or Webdis JSON
/// (a body starting with `{`). Values are numbers written as text: an unreadable value is that
/// field unknown, and an unknown running figure (or a missing hash) an unknown provider.
pub fn parse_hash_loads(body: &[u8], providers: usize) -> Result<Loads, String> {
    let values = if body.first() == Some(&b'{') {
        parse_named_json_reply(body, "EVAL")
    } else {
        parse_mget_reply(body)
    }
    .map_err(|err| format!("hash reply: {err}"))?;
    let fields = match values.len().checked_div(providers) {
        Some(fields @ 3..=4) if fields * providers == values.len() => fields,
        _ => {
            return Err(format!(
                "hash reply has {} values for {providers} providers",
                values.len()
            ))
        }
    };
    Ok(values
        .chunks(fields)
        .map(|row| {
            let field = |index: usize| parse_load(row.get(index)?.as_deref());
            field(0).map(|running| Load {
                running,
                waiting: field(1),
                cache_ratio: field(2).and_then(ratio),
                kv_usage: field(3).and_then(ratio),
            })
        })
        .collect())
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
    fn script_answers_every_field_of_every_key_in_one_flat_list() {
        let script = HASH_SCRIPT;
        assert!(script.contains("for _, key in ipairs(KEYS) do"), "{script}");
        assert!(
            script.contains("redis.pcall('HMGET', key, unpack(ARGV))"),
            "{script}"
        );
        assert!(script.contains("for j = 1, #ARGV do"), "{script}");
        // A failed HMGET gives nils, not an error table inside the reply.
        assert!(
            script.contains("if row.err then out[n] = false else out[n] = row[j] end"),
            "{script}"
        );
        assert!(script.ends_with("return out"), "{script}");
        // Field names come only from ARGV, so configured names work unchanged.
        for field in DEFAULT_HASH_FIELDS {
            assert!(!script.contains(field), "{script}");
        }
    }

    #[test]
    fn resp_and_webdis_replies_give_the_same_loads() {
        let resp = b"*9\r\n$1\r\n3\r\n$1\r\n1\r\n$3\r\n0.4\r\n$1\r\n5\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n";
        let webdis = br#"{"EVAL":["3","1","0.4","5",null,null,null,null,null]}"#;
        let expected = vec![load(3.0, Some(1.0), Some(0.4)), load(5.0, None, None), None];
        assert_eq!(parse_hash_loads(resp, 3).unwrap(), expected);
        assert_eq!(parse_hash_loads(webdis, 3).unwrap(), expected);
    }

    #[test]
    fn unreadable_values_are_unknown_and_an_unknown_running_hides_the_provider() {
        let webdis =
            br#"{"EVAL":["2","-1","1.5","2","x","0.3","busy","1","0.5",-1,"1","0.5",4,2,"NaN"]}"#;
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
        let webdis = br#"{"EVAL":["1","0","0.2","0.9","1","0","0.2","2"]}"#;
        let loads = parse_hash_loads(webdis, 2).unwrap();
        assert_eq!(loads[0].unwrap().kv_usage, Some(0.9));
        assert_eq!(loads[1].unwrap().kv_usage, None);
    }

    #[test]
    fn errors_and_replies_of_the_wrong_size_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"*3\r\n$1\r\n1\r\n$1\r\n1\r\n$1\r\n1\r\n",
                "hash reply has 3 values for 2 providers",
            ),
            (
                br#"{"EVAL":["1","1","1","1","1","1","1","1","1","1"]}"#,
                "hash reply has 10 values for 2 providers",
            ),
            (
                b"-NOSCRIPT No matching script\r\n",
                "hash reply: unreadable store reply: error reply: NOSCRIPT No matching script",
            ),
            (
                br#"{"EVAL":[false,"ERR unknown command 'EVAL'"]}"#,
                "hash reply: unreadable store reply: error reply: ERR unknown command 'EVAL'",
            ),
            (
                br#"{"GET":"x"}"#,
                "hash reply: unreadable store reply: no EVAL list in {\"GET\":\"x\"}",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(
                parse_hash_loads(body, 2).unwrap_err(),
                *message,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
