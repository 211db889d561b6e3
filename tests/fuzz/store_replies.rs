//! The store's replies: RESP (`parse_mget_reply`) and Webdis JSON (`parse_json_reply`,
//! `parse_named_json_reply`). Round trips through the crate's own encoder and replies written
//! here; arbitrary, token-soup and mutated replies are refused with `BadReply`, never a panic.

use ai_load_balancer::store::{
    encode_command, parse_json_reply, parse_mget_reply, parse_named_json_reply, StoreError,
};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::mutate::{any_bytes, mutated, mutated_from, token_soup};
use crate::runner::config;

#[rustfmt::skip]
const RESP_TOKENS: &[&[u8]] = &[
    b"\r\n", b"\r", b"\n", b"*", b"$", b":", b"+", b"-", b",", b"_", b"-1", b"0", b"3", b"99",
    b"-9223372036854775808", b"9223372036854775807", b"18446744073709551616", b"ERR", b"\x00",
    b"\xff",
];

#[rustfmt::skip]
const WEBDIS_TOKENS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b",", b":", b"\"", b"\\", b"\"MGET\"", b"\"EVAL\"", b"null",
    b"false", b"true", b"\"90\"", b"1e400", b"-0", b"18446744073709551616", b"\\ud800", b"\xff",
];

/// One RESP value as Redis may answer it, and what the parser must make of it.
#[derive(Debug, Clone)]
enum RespValue {
    Bulk(Vec<u8>),
    Null,
    Resp3Null,
    Integer(i64),
    Simple(String),
}

impl RespValue {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            RespValue::Bulk(bytes) => {
                out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            RespValue::Null => out.extend_from_slice(b"$-1\r\n"),
            RespValue::Resp3Null => out.extend_from_slice(b"_\r\n"),
            RespValue::Integer(number) => {
                out.extend_from_slice(format!(":{number}\r\n").as_bytes())
            }
            RespValue::Simple(text) => out.extend_from_slice(format!("+{text}\r\n").as_bytes()),
        }
    }

    fn parsed(&self) -> Option<Vec<u8>> {
        match self {
            RespValue::Bulk(bytes) => Some(bytes.clone()),
            RespValue::Null | RespValue::Resp3Null => None,
            RespValue::Integer(number) => Some(number.to_string().into_bytes()),
            RespValue::Simple(text) => Some(text.clone().into_bytes()),
        }
    }
}

fn resp_value() -> impl Strategy<Value = RespValue> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24).prop_map(RespValue::Bulk),
        prop::collection::vec(prop::sample::select(b"\r\n$*9".to_vec()), 0..8)
            .prop_map(RespValue::Bulk),
        Just(RespValue::Null),
        Just(RespValue::Resp3Null),
        any::<i64>().prop_map(RespValue::Integer),
        "[^\r\n]{0,12}".prop_map(RespValue::Simple),
    ]
}

fn resp_reply(values: &[RespValue]) -> Vec<u8> {
    let mut reply = format!("*{}\r\n", values.len()).into_bytes();
    for value in values {
        value.write(&mut reply);
    }
    reply
}

fn resp_replies() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(resp_value(), 0..8).prop_map(|values| resp_reply(&values))
}

fn assert_bad_reply<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    if let Err(err) = result {
        assert!(matches!(err, StoreError::BadReply(_)), "{err:?}");
    }
}

/// A Webdis list item and what the parser must make of it.
fn webdis_item() -> impl Strategy<Value = (Value, Option<Vec<u8>>)> {
    prop_oneof![
        any::<String>().prop_map(|text| (json!(text), Some(text.into_bytes()))),
        any::<i64>().prop_map(|number| (json!(number), Some(number.to_string().into_bytes()))),
        any::<u64>().prop_map(|number| (json!(number), Some(number.to_string().into_bytes()))),
        Just((Value::Null, None)),
        Just((json!(true), None)),
        Just((json!([1, "2"]), None)),
        Just((json!({"a": 1}), None)),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn resp_reads_back_the_commands_it_encodes(args in prop::collection::vec(any::<String>(), 0..8)) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let values = parse_mget_reply(&encode_command(&args)).unwrap();
        let expected: Vec<_> = args.iter().map(|arg| Some(arg.as_bytes().to_vec())).collect();
        prop_assert_eq!(values, expected);
    }

    #[test]
    fn resp_reads_every_value_type(values in prop::collection::vec(resp_value(), 0..8)) {
        let reply = resp_reply(&values);
        let expected: Vec<_> = values.iter().map(RespValue::parsed).collect();
        prop_assert_eq!(parse_mget_reply(&reply).unwrap(), expected);
    }

    #[test]
    fn resp_refuses_a_reply_cut_short_or_followed_by_more(
        reply in resp_replies(),
        extra in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        for end in 0..reply.len() {
            prop_assert!(parse_mget_reply(&reply[..end]).is_err(), "{:?}", &reply[..end]);
        }
        let longer = [reply.as_slice(), &extra].concat();
        prop_assert!(parse_mget_reply(&longer).is_err());
    }

    #[test]
    fn resp_never_panics_on_mutated_replies(reply in mutated(resp_replies(), RESP_TOKENS)) {
        assert_bad_reply(parse_mget_reply(&reply));
    }

    #[test]
    fn resp_never_panics_on_arbitrary_bytes(reply in prop_oneof![any_bytes(), token_soup(RESP_TOKENS)]) {
        assert_bad_reply(parse_mget_reply(&reply));
    }

    #[test]
    fn webdis_reads_back_its_list(
        items in prop::collection::vec(webdis_item(), 0..8),
        command in "[A-Z]{1,6}",
    ) {
        let (list, expected): (Vec<Value>, Vec<Option<Vec<u8>>>) = items.into_iter().unzip();
        // Webdis writes an error as `[false, "message"]`; no list here starts with false.
        let body = serde_json::to_vec(&json!({ command.clone(): list, "other": [1] })).unwrap();
        prop_assert_eq!(parse_named_json_reply(&body, &command).unwrap(), expected.clone());
        if command == "MGET" {
            prop_assert_eq!(parse_json_reply(&body).unwrap(), expected);
        }
    }

    #[test]
    fn webdis_error_replies_are_bad_replies(message in any::<String>()) {
        let body = serde_json::to_vec(&json!({"MGET": [false, message.clone()]})).unwrap();
        prop_assert_eq!(
            parse_json_reply(&body),
            Err(StoreError::BadReply(format!("error reply: {message}")))
        );
    }

    #[test]
    fn webdis_never_panics(
        body in prop_oneof![
            any_bytes(),
            token_soup(WEBDIS_TOKENS),
            mutated_from(
                &[br#"{"MGET":["90","10",null]}"#, br#"{"EVAL":["3","1",null,false,"ERR x",2.5]}"#],
                WEBDIS_TOKENS,
            ),
        ],
        command in prop::sample::select(vec!["MGET", "EVAL", ""]),
    ) {
        assert_bad_reply(parse_named_json_reply(&body, command));
    }
}
