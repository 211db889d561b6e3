//! The metrics store: the one request that reads every provider's load, and the parsing of its
//! reply. Built once per configuration; the glue only sends the bytes and hands back the reply.

mod outage;
mod resp;
mod webdis;

use std::fmt;

use crate::config::{Protocol, ReplyFormat, StoreConfig};
use crate::load::{Load, Loads};

pub use outage::{StoreOutages, Transition};
pub use resp::{encode_command, parse_mget_reply};
pub use webdis::{parse_json_reply, parse_named_json_reply};

/// The store request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreQuery {
    /// Higress `proxy_redis_call`: raw RESP to `upstream` (cluster name plus `?db=N`).
    Resp { upstream: String, command: Vec<u8> },
    /// `dispatch_http_call` to a Webdis cluster.
    Webdis {
        cluster: String,
        path: String,
        authorization: Option<String>,
    },
}

impl StoreQuery {
    pub fn mget(store: &StoreConfig, keys: &[&str]) -> Self {
        let mut args = Vec::with_capacity(keys.len() + 1);
        args.push("MGET");
        args.extend_from_slice(keys);
        Self::command(store, &args)
    }

    /// Any Redis command, as RESP or as a Webdis path.
    pub fn command(store: &StoreConfig, args: &[&str]) -> Self {
        match store.protocol {
            Protocol::Resp => StoreQuery::Resp {
                upstream: match store.database {
                    Some(db) => format!("{}?db={db}", store.cluster),
                    None => store.cluster.clone(),
                },
                command: encode_command(args),
            },
            Protocol::Webdis => StoreQuery::Webdis {
                cluster: store.cluster.clone(),
                path: webdis::command_path(store.database, args),
                authorization: store.username.as_ref().map(|user| {
                    webdis::basic_authorization(user, store.password.as_deref().unwrap_or(""))
                }),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The call could not be made, failed, was refused or timed out.
    Unavailable(String),
    /// The store answered something we cannot read as an MGET reply.
    BadReply(String),
    /// Background refresh: no loads published recently enough.
    Stale(String),
    /// Not asked: the store is known down (see `outage`).
    KnownDown,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "store unavailable: {why}"),
            StoreError::BadReply(why) => write!(f, "unreadable store reply: {why}"),
            StoreError::Stale(why) => write!(f, "no fresh loads: {why}"),
            StoreError::KnownDown => f.write_str("store known down, not asked"),
        }
    }
}

/// `&str`s of `strings`, as the readers and commands take them.
pub fn str_refs(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// Reads a store's reply in the configured format.
pub fn parse_reply(
    format: &ReplyFormat,
    body: &[u8],
    providers: usize,
) -> Result<Loads, StoreError> {
    match format {
        ReplyFormat::Keys => parse_keys_reply(body, providers),
        ReplyFormat::Hashes => {
            crate::engine::parse_hash_loads(body, providers).map_err(StoreError::BadReply)
        }
        ReplyFormat::Endpoint(names) => {
            crate::engine::parse_json_loads(body, &str_refs(names)).map_err(StoreError::BadReply)
        }
    }
}

/// Reads an MGET reply as RESP (Higress) or Webdis JSON, whichever it is.
pub fn parse_keys_reply(body: &[u8], providers: usize) -> Result<Loads, StoreError> {
    let values = if body.first() == Some(&b'{') {
        parse_json_reply(body)?
    } else {
        parse_mget_reply(body)?
    };
    if values.len() != providers {
        return Err(StoreError::BadReply(format!(
            "{} values for {providers} providers",
            values.len()
        )));
    }
    Ok(values
        .iter()
        .map(|value| parse_load(value.as_deref()).map(Load::running))
        .collect())
}

/// A load is a finite, non-negative number. Anything else — missing, text, negative, NaN,
/// infinite — is unknown, and an unknown load is never preferred over a known one.
pub fn parse_load(value: Option<&[u8]>) -> Option<f64> {
    let text = std::str::from_utf8(value?).ok()?.trim();
    let load: f64 = text.parse().ok()?;
    (load.is_finite() && load >= 0.0).then_some(load)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;

    fn store(protocol: Protocol, database: Option<u32>) -> StoreConfig {
        StoreConfig {
            cluster: "outbound|6379||redis-svc".into(),
            username: Some("lb".into()),
            password: Some("s3cret".into()),
            database,
            timeout_ms: 100,
            protocol,
            refresh: crate::config::Refresh::PerRequest {
                down: Default::default(),
            },
        }
    }

    #[test]
    fn resp_query_targets_the_cluster_and_database() {
        let query = StoreQuery::mget(
            &store(Protocol::Resp, Some(2)),
            &["ai_metric:a", "ai_metric:b"],
        );
        assert_eq!(
            query,
            StoreQuery::Resp {
                upstream: "outbound|6379||redis-svc?db=2".into(),
                command: b"*3\r\n$4\r\nMGET\r\n$11\r\nai_metric:a\r\n$11\r\nai_metric:b\r\n"
                    .to_vec(),
            }
        );
    }

    #[test]
    fn webdis_query_is_a_raw_mget_path_with_basic_auth() {
        let query = StoreQuery::mget(&store(Protocol::Webdis, None), &["ai_metric:a", "k/x y"]);
        assert_eq!(
            query,
            StoreQuery::Webdis {
                cluster: "outbound|6379||redis-svc".into(),
                path: "/MGET/ai_metric:a/k%2Fx%20y.json".into(),
                authorization: Some("Basic bGI6czNjcmV0".into()),
            }
        );
    }

    #[test]
    fn loads_that_are_not_finite_non_negative_numbers_are_unknown() {
        assert_eq!(parse_load(Some(b"10")), Some(10.0));
        assert_eq!(parse_load(Some(b" 0.25 ")), Some(0.25));
        assert_eq!(parse_load(Some(b"0")), Some(0.0));
        assert_eq!(parse_load(Some(b"1e3")), Some(1000.0));
        for bad in [
            &b"-1"[..],
            b"NaN",
            b"nan",
            b"inf",
            b"-inf",
            b"high",
            b"",
            b"\xff",
        ] {
            assert_eq!(
                parse_load(Some(bad)),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_load(None), None);
    }

    #[test]
    fn reply_is_read_as_resp_or_webdis_json() {
        let r = |running| Some(Load::running(running));
        let resp = parse_keys_reply(b"*3\r\n$2\r\n90\r\n$-1\r\n$3\r\nabc\r\n", 3).unwrap();
        assert_eq!(resp, vec![r(90.0), None, None]);
        let json = parse_keys_reply(br#"{"MGET":["90","10",null]}"#, 3).unwrap();
        assert_eq!(json, vec![r(90.0), r(10.0), None]);
    }

    #[test]
    fn reply_with_the_wrong_number_of_values_is_refused() {
        let err = parse_keys_reply(b"*1\r\n$2\r\n90\r\n", 2).unwrap_err();
        assert_eq!(err, StoreError::BadReply("1 values for 2 providers".into()));
    }
}
