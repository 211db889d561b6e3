//! Request trailers. Envoy's filter manager continues the whole stream, held headers included,
//! when a filter lets trailers through; a client that ends its body with a trailer must not get
//! its request out before the balancer chose, with its own routing headers and its body's
//! model untouched.

use serde_json::json;

use super::{assert_routed, request, seed_config, Gateway, CHAT, CLIENT_CONTROL_HEADERS};
use super::{BodyDelivery, Build, Stream, DELIVERIES, QIANWEN_MODEL};
use crate::host::HeadersState;

const CLIENT_TRAILER: (&str, &str) = ("x-client-trailer", "1");

/// When the store's reply comes, relative to the client's body and trailer.
#[derive(Debug, Clone, Copy)]
enum ReplyArrives {
    AfterTheTrailer,
    BeforeTheBody,
    /// Half the body, the reply, the rest of the body, the trailer.
    MidBody,
}

const REPLY_ARRIVALS: [ReplyArrives; 3] = [
    ReplyArrives::AfterTheTrailer,
    ReplyArrives::BeforeTheBody,
    ReplyArrives::MidBody,
];

/// Nothing of the request reached the upstream: its headers are held.
fn assert_held(stream: &Stream, when: &str) {
    assert!(
        stream.upstream.headers.is_none() && stream.headers_state == HeadersState::Held,
        "{when}, the headers reached the upstream before the choice: {:?}, actions {:?}",
        stream.upstream.headers,
        stream.actions
    );
}

/// A chat request whose client names its own provider and model; its headers sent, without
/// end of stream (a body, or trailers, follow).
fn hostile_chat(vm: &mut crate::host::Vm, body: Option<&[u8]>) -> u32 {
    let path = "/v1/chat/completions";
    let id = request(vm, "POST", path, body, &CLIENT_CONTROL_HEADERS, &[]);
    vm.send_headers(id, false);
    id
}

/// The client's trailer, and no other, reached the upstream.
fn assert_trailer_forwarded(stream: &Stream) {
    let expected = vec![(CLIENT_TRAILER.0.to_string(), CLIENT_TRAILER.1.to_string())];
    assert_eq!(
        stream.upstream.trailers,
        Some(expected),
        "the upstream's trailers"
    );
}

pub fn trailers_never_release_headers_before_the_choice(build: Build) {
    for delivery in DELIVERIES {
        let mut gateway = Gateway::start(build, delivery, &seed_config(build, json!({})));
        for arrival in REPLY_ARRIVALS {
            let vm = gateway.vm();
            let id = hostile_chat(vm, Some(CHAT));
            match arrival {
                ReplyArrives::AfterTheTrailer => {
                    vm.send_body(id, CHAT, false);
                    vm.send_trailers(id, &[CLIENT_TRAILER]);
                    assert_held(
                        vm.stream(id),
                        "after the trailer and before the store's reply",
                    );
                    vm.deliver_store_replies();
                }
                ReplyArrives::BeforeTheBody => {
                    vm.deliver_store_replies();
                    vm.send_body(id, CHAT, false);
                    vm.send_trailers(id, &[CLIENT_TRAILER]);
                }
                ReplyArrives::MidBody => {
                    let (head, tail) = CHAT.split_at(CHAT.len() / 2);
                    vm.send_body(id, head, false);
                    vm.deliver_store_replies();
                    vm.send_body(id, tail, false);
                    vm.send_trailers(id, &[CLIENT_TRAILER]);
                }
            }
            let stream = vm.stream(id);
            eprintln!("checking {delivery:?}, reply {arrival:?}");
            assert_routed(stream, "qianwen", QIANWEN_MODEL, CHAT);
            assert_trailer_forwarded(stream);
        }
    }
}

/// Model pools read the body's model before choosing: the trailer ends that body, and still
/// releases nothing (the host must deliver body to held headers, as Higress does; with Envoy's
/// default the body never reaches a filter holding the headers).
pub fn trailers_end_the_body_a_model_pool_reads(build: Build) {
    let pools = json!({"auto": {"backends": [
        {"provider": "minmax", "model": "minmax-in-pool"},
        {"provider": "qianwen", "model": "qianwen-in-pool"}
    ]}});
    let config = seed_config(build, json!({"models": pools}));
    let mut gateway = Gateway::start(build, BodyDelivery::WhileHeadersPaused, &config);
    let vm = gateway.vm();
    let id = hostile_chat(vm, Some(CHAT));
    vm.send_body(id, CHAT, false);
    assert_held(vm.stream(id), "before the trailer");
    vm.send_trailers(id, &[CLIENT_TRAILER]);
    assert_held(
        vm.stream(id),
        "after the trailer and before the store's reply",
    );
    vm.deliver_store_replies();
    let stream = vm.stream(id);
    assert_routed(stream, "qianwen", "qianwen-in-pool", CHAT);
    assert_trailer_forwarded(stream);
}

/// Headers, then trailers, no body at all: the trailers wait with the headers for the choice.
pub fn trailers_without_a_body_wait_for_the_choice(build: Build) {
    for delivery in DELIVERIES {
        let mut gateway = Gateway::start(build, delivery, &seed_config(build, json!({})));
        let vm = gateway.vm();
        let id = hostile_chat(vm, None);
        vm.send_trailers(id, &[CLIENT_TRAILER]);
        assert_held(
            vm.stream(id),
            "after the trailer and before the store's reply",
        );
        vm.deliver_store_replies();
        let stream = vm.stream(id);
        eprintln!("checking {delivery:?}");
        assert_routed(stream, "qianwen", QIANWEN_MODEL, b"");
        assert_trailer_forwarded(stream);
    }
}

/// Envoy's default delivery, the body and its trailer queued while the store is asked, the body
/// cut short inside its `model` value (a malformed one): the filter, rewriting it as it passes,
/// still holds that value when the trailer comes, and a Continue there would make Envoy drop
/// the chunk it paused. It reaches the upstream byte for byte once the filter resumes the
/// request from its next tick.
pub fn a_body_still_held_when_its_trailer_comes_is_not_lost(build: Build) {
    let model_value = CHAT
        .windows(9)
        .position(|w| w == b"\"model\":\"")
        .expect("CHAT has a model")
        + 9;
    let truncated = &CHAT[..model_value + 2];
    let delivery = BodyDelivery::AfterHeadersResume;
    let mut gateway = Gateway::start(build, delivery, &seed_config(build, json!({})));
    let vm = gateway.vm();
    let id = request(
        vm,
        "POST",
        "/v1/chat/completions",
        Some(truncated),
        &[],
        &[],
    );
    vm.send_headers(id, false);
    vm.send_body(id, truncated, false);
    vm.send_trailers(id, &[CLIENT_TRAILER]);
    vm.deliver_store_replies();
    assert!(
        !vm.stream(id).upstream.complete,
        "the filter continued on the trailer, so Envoy dropped the body it held: {:?}",
        vm.stream(id).actions
    );
    gateway.host.advance(std::time::Duration::from_millis(5));
    let stream = gateway.host.vm(0).stream(id);
    stream.assert_forwarded_whole();
    assert_eq!(stream.upstream_body(), truncated, "not JSON: untouched");
    assert_eq!(
        stream.upstream_header("x-selected-provider"),
        Some("qianwen")
    );
    assert_trailer_forwarded(stream);
}
