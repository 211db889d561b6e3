//! Control headers a client sends (`x-selected-provider`, `x-rewrite-target-model`, or the
//! names configured) are gone from the request as soon as its headers callback returns, for a
//! balanced request and an unbalanced one alike: whatever lets the headers go later (a trailer,
//! a resume, a pass-through) can no longer carry the client's choice.

use serde_json::json;

use super::{request, seed_config, Gateway, CHAT, CLIENT_CONTROL_HEADERS};
use super::{Build, Stream, Vm, DELIVERIES};

/// A header the filter has no business with: it must stay.
const REQUEST_ID: (&str, &str) = ("x-request-id", "req-7");

/// The names of `names` still in the request's headers (as the gateway would forward them now).
fn still_present<'a>(stream: &Stream, names: &[&'a str]) -> Vec<&'a str> {
    names
        .iter()
        .copied()
        .filter(|name| stream.request_headers.iter().any(|(key, _)| key == name))
        .collect()
}

/// Sends the headers of a request carrying `control` (and [`REQUEST_ID`]); `body` says whether
/// a body follows. Returns the request once the headers callback returned.
fn headers_of(vm: &mut Vm, method: &str, path: &str, body: bool, control: &[(&str, &str)]) -> u32 {
    let mut extra = control.to_vec();
    extra.push(REQUEST_ID);
    let id = request(vm, method, path, body.then_some(CHAT), &extra, &[]);
    vm.send_headers(id, !body);
    id
}

fn assert_removed(stream: &Stream, control: &[(&str, &str)], what: &str) {
    let mut names: Vec<&str> = control.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        still_present(stream, &names),
        Vec::<&str>::new(),
        "{what}: the client's control headers are still in the request after its headers callback"
    );
    assert_eq!(
        still_present(stream, &[REQUEST_ID.0]),
        [REQUEST_ID.0],
        "{what}: other headers stay"
    );
}

pub fn control_headers_are_removed_when_headers_arrive(build: Build) {
    for delivery in DELIVERIES {
        let mut gateway = Gateway::start(build, delivery, &seed_config(build, json!({})));
        let vm = gateway.vm();
        let cases = [
            (
                "POST",
                "/v1/chat/completions",
                true,
                "a balanced chat request",
            ),
            ("GET", "/v1/models", false, "a GET without body"),
            (
                "POST",
                "/internal/jobs",
                true,
                "a POST outside the inference paths",
            ),
        ];
        // Each name twice: every copy goes.
        let control = [CLIENT_CONTROL_HEADERS, CLIENT_CONTROL_HEADERS].concat();
        for (method, path, body, what) in cases {
            let id = headers_of(vm, method, path, body, &control);
            assert_removed(vm.stream(id), &control, &format!("{delivery:?}, {what}"));
        }
    }
}

pub fn configured_control_header_names_are_removed_too(build: Build) {
    let config = seed_config(
        build,
        json!({"selected_provider_header": "x-route-to", "rewrite_model_header": "x-model-to"}),
    );
    let control = [("x-route-to", "minmax"), ("x-model-to", "evil")];
    let mut gateway = Gateway::start(build, DELIVERIES[0], &config);
    let vm = gateway.vm();
    for (method, path, body) in [
        ("POST", "/v1/chat/completions", true),
        ("GET", "/v1/models", false),
    ] {
        let id = headers_of(vm, method, path, body, &control);
        assert_removed(vm.stream(id), &control, &format!("{method} {path}"));
    }
}
