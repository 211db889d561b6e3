//! The host's own promises behind the status tests, on small WAT modules: header maps exist for
//! the filter only as long as Envoy 1.40 keeps them, an injected status answers in place of the
//! call (once, or on one map only), and a trap fails the VM as Envoy fails it.

use std::time::Duration;

use crate::host::{from_wat, BodyDelivery, Fault, Flavor, Host, MapType, Status};

/// Each callback probes a header map and stores, in shared data under the callback's key, four
/// bytes: the status of reading `x-seen`, of reading all pairs, the pairs' size (low byte), and
/// of replacing `x-seen` with `yes`. The request headers are probed, then continued, then probed
/// again, in `proxy_on_request_headers`; the body callback probes them later; the response
/// callbacks probe the response headers; `proxy_on_log` the request headers.
const PROBE_MODULE: &str = r#"
(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value"
    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-seen")
  (data (i32.const 8) "yes")
  (data (i32.const 16) "headers")
  (data (i32.const 32) "after-continue")
  (data (i32.const 48) "body")
  (data (i32.const 64) "response")
  (data (i32.const 80) "response-body")
  (data (i32.const 96) "log")
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $at))
  (func $probe (param $map i32) (param $key i32) (param $len i32)
    (i32.store (i32.const 312) (i32.const -1))
    (i32.store8 (i32.const 200)
      (call $get (local.get $map) (i32.const 0) (i32.const 6) (i32.const 300) (i32.const 304)))
    (i32.store8 (i32.const 201) (call $pairs (local.get $map) (i32.const 308) (i32.const 312)))
    (i32.store8 (i32.const 202) (i32.load8_u (i32.const 312)))
    (i32.store8 (i32.const 203)
      (call $replace (local.get $map) (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 3)))
    (drop (call $set (local.get $key) (local.get $len) (i32.const 200) (i32.const 4) (i32.const 0))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $probe (i32.const 0) (i32.const 16) (i32.const 7))
    (drop (call $continue (i32.const 0)))
    (call $probe (i32.const 0) (i32.const 32) (i32.const 14))
    (i32.const 1))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (call $probe (i32.const 0) (i32.const 48) (i32.const 4))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $probe (i32.const 2) (i32.const 64) (i32.const 8))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (call $probe (i32.const 2) (i32.const 80) (i32.const 13))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (call $probe (i32.const 0) (i32.const 96) (i32.const 3)))
  (func (export "proxy_on_delete") (param i32))
)
"#;

const OK: u8 = 0;
const NOT_FOUND: u8 = Status::NotFound as u8;
const BAD_ARGUMENT: u8 = Status::BadArgument as u8;

/// One exchange through the probe module: headers, body, response headers and body, the end.
fn probe_exchange(host: &mut Host) {
    let vm = host.vm(0);
    let request = vm.request(
        &[(":method", "POST"), (":path", "/v1/chat/completions")],
        &[],
    );
    vm.send_headers(request, false);
    vm.send_body(request, b"{}", true);
    vm.send_response_headers(request, &[(":status", "200")], false);
    vm.send_response_body(request, b"{}", true);
    vm.finish(request);
    vm.assert_survived();
}

/// What the probe stored for `key`: [get value, get pairs, pairs size, replace].
fn probed(host: &Host, key: &str) -> [u8; 4] {
    let (bytes, _) = host
        .shared_data(key)
        .unwrap_or_else(|| panic!("no probe {key}"));
    let mut statuses = [0; 4];
    statuses.copy_from_slice(&bytes);
    statuses
}

fn probe_host() -> Host {
    let mut host = Host::with_module(from_wat(PROBE_MODULE), Flavor::Envoy)
        .body_delivery(BodyDelivery::WhileHeadersPaused);
    host.start_vm("").expect("configured");
    host
}

/// A probe of a map the filter has: `x-seen` absent, pairs read, `x-seen` set.
fn present(size: u8) -> [u8; 4] {
    [NOT_FOUND, OK, size, OK]
}

/// A probe of a map Envoy no longer has: reads fail but pairs read as empty; writes fail.
const GONE: [u8; 4] = [BAD_ARGUMENT, OK, 0, BAD_ARGUMENT];

#[test]
fn header_maps_are_gone_once_continued_as_in_envoy() {
    let mut host = probe_host();
    probe_exchange(&mut host);
    let headers = probed(&host, "headers");
    assert_eq!(headers, present(headers[2]), "in proxy_on_request_headers");
    assert_ne!(headers[2], 0, "the request headers' pairs");
    assert_eq!(
        probed(&host, "after-continue"),
        GONE,
        "right after proxy_continue_stream"
    );
    assert_eq!(probed(&host, "body"), GONE, "in the body callback, later");
    let response = probed(&host, "response");
    assert_eq!(
        response,
        present(response[2]),
        "in proxy_on_response_headers"
    );
    assert_eq!(
        probed(&host, "response-body"),
        GONE,
        "after the response headers went on"
    );
    // The access-log phase reads the final request headers (x-seen set earlier) but writes
    // nothing.
    let log = probed(&host, "log");
    assert_eq!(
        [log[0], log[1], log[3]],
        [OK, OK, BAD_ARGUMENT],
        "in proxy_on_log"
    );
    assert_ne!(log[2], 0);
}

#[test]
fn an_injected_status_answers_in_place_of_the_call_once_on_its_map() {
    let mut host = probe_host();
    host.inject(
        Fault::new("proxy_get_header_map_value", Status::InternalFailure)
            .on_map(MapType::ResponseHeaders)
            .once(),
    );
    probe_exchange(&mut host);
    assert_eq!(
        probed(&host, "headers")[0],
        NOT_FOUND,
        "another map: untouched"
    );
    assert_eq!(probed(&host, "response")[0], Status::InternalFailure as u8);
    assert_eq!(probed(&host, "response-body")[0], BAD_ARGUMENT, "once only");
    assert_eq!(host.injected("proxy_get_header_map_value"), 1);
    assert_eq!(host.calls("proxy_get_header_map_value"), 6);

    host.fail_call("proxy_set_shared_data", Status::InvalidMemoryAccess);
    probe_exchange(&mut host);
    assert_eq!(
        host.injected("proxy_set_shared_data"),
        6,
        "always: every call"
    );
    assert_eq!(
        probed(&host, "response")[0],
        Status::InternalFailure as u8,
        "nothing was stored: the first exchange's probe is still there"
    );
    host.clear_faults();
    probe_exchange(&mut host);
    assert_eq!(probed(&host, "response")[0], NOT_FOUND);
}

/// Ticks log; the request headers callback traps.
const TRAP_MODULE: &str = r#"
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $period (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "tick")
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $period (i32.const 1000)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 4))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    unreachable)
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
"#;

#[test]
fn a_trap_fails_the_vm_and_every_later_request_is_answered_503() {
    let mut host = Host::with_module(from_wat(TRAP_MODULE), Flavor::Envoy);
    host.start_vm("").expect("configured");
    host.advance(Duration::from_millis(1_000));
    assert_eq!(host.calls("proxy_log"), 1, "a tick while alive");

    for _ in 0..2 {
        let vm = host.vm(0);
        let request = vm.request(&[(":method", "GET"), (":path", "/")], &[]);
        vm.send_headers(request, true);
        vm.finish(request);
        let stream = vm.stream(request);
        let response = stream.local_response.as_ref().expect("Envoy answers");
        assert_eq!(
            (response.status, response.details.as_str()),
            (503, "wasm_fail_stream")
        );
        assert!(stream.upstream.headers.is_none(), "nothing went upstream");
    }
    let trap = host.vm(0).trap().expect("the VM trapped").clone();
    assert_eq!(trap.export, "proxy_on_request_headers");
    host.advance(Duration::from_millis(5_000));
    assert_eq!(host.calls("proxy_log"), 1, "a failed VM gets no tick");
}

/// A module whose start function logs: Envoy answers that host call with a trap
/// ("restricted_callback") and the VM never loads.
const LOGS_WHILE_INITIALISING: &str = r#"
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello")
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "_initialize")
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 5))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1)))
"#;

#[test]
fn a_host_call_while_the_module_initialises_fails_the_vm_as_in_envoy() {
    let mut host = Host::with_module(from_wat(LOGS_WHILE_INITIALISING), Flavor::Envoy);
    let refused = host
        .start_vm("")
        .expect_err("Envoy refuses the call and the VM");
    let trap = refused.trap.expect("a trap");
    assert!(trap.message.contains("restricted_callback"), "{trap}");
}
