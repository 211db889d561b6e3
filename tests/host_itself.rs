#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! The test host's own promises, on small modules written in WAT: shared data with Envoy's
//! compare-and-swap across VMs (and the conflicts a test can inject), ticks and time on the
//! host's clock, a configuration update in a running VM, a local response, request trailers
//! with Envoy's filter-manager semantics, and a loud failure naming any import the host does not
//! implement.

mod host;

use std::time::Duration;

use host::{from_wat, Action, BodyDelivery, Flavor, Host, TrailersState};

/// On each tick: read the time; read `lease` and its CAS; write the time to `lease` with that
/// CAS, then again with the same (now stale) CAS; store the three statuses in `status`; count
/// the tick. On request headers: answer 403 locally.
const LEASE_MODULE: &str = r#"
(module
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $period (param i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "lease")
  (data (i32.const 16) "status")
  (data (i32.const 32) "ticks")
  (data (i32.const 48) "denied")
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $at))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $period (i32.const 1000)))
    (drop (call $define (i32.const 0) (i32.const 32) (i32.const 5) (i32.const 200)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (local $cas i32)
    (drop (call $now (i32.const 100)))
    ;; status of the read at 300; value pointer/size at 204/208; CAS at 212
    (i32.store8 (i32.const 300)
      (call $get (i32.const 0) (i32.const 5) (i32.const 204) (i32.const 208) (i32.const 212)))
    (local.set $cas (i32.load (i32.const 212)))
    (i32.store8 (i32.const 301)
      (call $set (i32.const 0) (i32.const 5) (i32.const 100) (i32.const 8) (local.get $cas)))
    (i32.store8 (i32.const 302)
      (call $set (i32.const 0) (i32.const 5) (i32.const 100) (i32.const 8) (local.get $cas)))
    (drop (call $set (i32.const 16) (i32.const 6) (i32.const 300) (i32.const 3) (i32.const 0)))
    (drop (call $increment (i32.load (i32.const 200)) (i64.const 1))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $local (i32.const 403) (i32.const 48) (i32.const 6) (i32.const 48) (i32.const 6)
      (i32.const 0) (i32.const 0) (i32.const -1)))
    (i32.const 1))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
"#;

fn lease_host() -> Host {
    let mut host = Host::with_module(from_wat(LEASE_MODULE), Flavor::Envoy);
    for _ in 0..2 {
        host.start_vm("").expect("configured");
    }
    host
}

fn statuses(host: &Host) -> Vec<u8> {
    host.shared_data("status").expect("a tick ran").0
}

fn lease_time(host: &Host) -> u64 {
    let (value, _) = host.shared_data("lease").expect("lease written");
    u64::from_le_bytes(value.try_into().expect("8 bytes"))
}

#[test]
fn ticks_follow_the_host_clock_in_time_order() {
    let mut host = lease_host();
    host.advance(Duration::from_millis(999));
    assert_eq!(host.metric("ticks"), 0, "no tick before its period");
    host.advance(Duration::from_millis(1));
    assert_eq!(host.metric("ticks"), 2, "each VM ticks once at 1 s");
    let first = lease_time(&host);
    host.advance(Duration::from_millis(2500));
    assert_eq!(host.metric("ticks"), 6, "and at 2 s and 3 s, not at 3.5 s");
    // The time the filter reads is the host's: exactly 2 s later, at the last tick.
    assert_eq!(lease_time(&host) - first, 2_000_000_000);
}

#[test]
fn shared_data_is_one_store_with_compare_and_swap() {
    let mut host = lease_host();
    host.advance(Duration::from_secs(1));
    // VM 1 ticks after VM 0 and reads VM 0's value (0 Ok): its write with the CAS it read is
    // stored (0), the second with the same CAS, stale by then, is refused (8 CasMismatch).
    assert_eq!(statuses(&host), [0, 0, 8]);
    let (_, cas_before) = host.shared_data("lease").expect("lease");
    host.advance(Duration::from_secs(1));
    assert_eq!(statuses(&host), [0, 0, 8]);
    let (_, cas_after) = host.shared_data("lease").expect("lease");
    assert!(cas_after > cas_before, "every stored write gets a new CAS");
}

#[test]
fn injected_conflicts_fail_compare_and_swap_writes_only() {
    let mut host = lease_host();
    host.advance(Duration::from_secs(1));
    let (_, cas_before) = host.shared_data("lease").expect("lease");
    host.conflict_on("lease", 1);
    host.conflict_on("status", 5);
    // VM 0 alone: its write with the CAS it read loses (8), as to another worker's write, which
    // also changed the CAS, so its second write loses too. Its CAS-0 write of `status` is
    // unconditional and meets no conflict.
    host.vm(0).tick();
    assert_eq!(statuses(&host), [0, 8, 8]);
    assert_eq!(host.conflicts_left("lease"), 0);
    assert_eq!(host.conflicts_left("status"), 5);
    let (_, cas_after) = host.shared_data("lease").expect("lease");
    assert!(
        cas_after > cas_before,
        "the conflicting write changed the CAS"
    );
    host.vm(0).tick();
    assert_eq!(statuses(&host), [0, 0, 8], "conflicts used up");
}

/// Writes the root context it is configured in to `configured`, a new stream's parent to
/// `parent`, and the context it ticks in to `ticked` (each a little-endian u32). Refuses an
/// empty configuration.
const ROOTS_MODULE: &str = r#"
(module
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $period (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "configured")
  (data (i32.const 16) "parent")
  (data (i32.const 32) "ticked")
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $at))
  (func $put (param $key i32) (param $len i32) (param $value i32)
    (i32.store (i32.const 100) (local.get $value))
    (drop (call $set (local.get $key) (local.get $len)
      (i32.const 100) (i32.const 4) (i32.const 0))))
  (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
    (if (local.get $parent) (then (call $put (i32.const 16) (i32.const 6) (local.get $parent)))))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (call $put (i32.const 0) (i32.const 10) (local.get $root))
    (drop (call $period (i32.const 1000)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param $root i32)
    (call $put (i32.const 32) (i32.const 6) (local.get $root)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
)
"#;

#[test]
fn a_configuration_update_is_a_new_root_context_in_the_same_vm() {
    let read = |host: &Host, key: &str| {
        let (value, _) = host.shared_data(key).expect(key);
        u32::from_le_bytes(value.try_into().expect("4 bytes"))
    };
    let mut host = Host::with_module(from_wat(ROOTS_MODULE), Flavor::Envoy);
    let vm = host.start_vm("v1").expect("configured");
    assert_eq!(read(&host, "configured"), 1);
    let before = host
        .vm(vm)
        .request(&[(":method", "GET"), (":path", "/")], &[]);
    assert_eq!(read(&host, "parent"), 1);

    let root = host.vm(vm).reconfigure("v2").expect("reconfigured");
    assert_eq!(
        (read(&host, "configured"), host.vm(vm).root_context()),
        (root, root)
    );
    let after = host
        .vm(vm)
        .request(&[(":method", "GET"), (":path", "/")], &[]);
    assert_eq!(
        read(&host, "parent"),
        root,
        "new streams hang off the new root"
    );
    assert_eq!(host.vm(vm).stream(before).root_context, 1);
    assert_eq!(host.vm(vm).stream(after).root_context, root);
    host.advance(Duration::from_secs(1));
    assert_eq!(read(&host, "ticked"), root, "ticks go to the new root");
    host.vm(vm).finish(before);

    // A refused update leaves the VM on the configuration it had.
    assert!(host.vm(vm).reconfigure("").is_err());
    assert_eq!(host.vm(vm).root_context(), root);
}

#[test]
fn a_local_response_stops_the_request() {
    let mut host = lease_host();
    let vm = host.vm(0);
    let request = vm.request(&[(":method", "GET"), (":path", "/")], &[]);
    assert_eq!(vm.send_headers(request, false), Action::Pause);
    assert_eq!(vm.send_body(request, b"ignored", true), None);
    let stream = vm.stream(request);
    let response = stream.local_response.as_ref().expect("answered locally");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (403, b"denied".as_slice())
    );
    assert_eq!(response.details, "denied");
    assert!(
        stream.upstream.headers.is_none(),
        "nothing reached the upstream"
    );
}

#[test]
fn an_import_the_host_lacks_fails_loudly_with_its_name() {
    let module = from_wat(
        r#"(module
          (import "env" "proxy_grpc_cancel" (func $cancel (param i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "proxy_on_context_create") (param i32 i32))
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (call $cancel (i32.const 7))))"#,
    );
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut host = Host::with_module(module, Flavor::Envoy);
        let _ = host.start_vm("");
    }))
    .expect_err("the call must fail");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("does not implement env.proxy_grpc_cancel"),
        "{message}"
    );
}

/// Pauses the request headers; answers each body chunk with `body_answer`; on request trailers
/// (when `trailers_answer` is given: else it lacks the callback) replaces the body with
/// `rewritten`, adds the trailer `x-filter-trailer: seen` and answers `trailers_answer`. Each
/// tick resumes the request of context 2 (the first stream).
fn trailers_module(body_answer: Action, trailers_answer: Option<Action>) -> wasmtime::Module {
    let abi = |action: Action| i32::from(action == Action::Pause);
    let trailers = trailers_answer.map_or(String::new(), |answer| {
        format!(
            r#"(func (export "proxy_on_request_trailers") (param i32 i32) (result i32)
                (drop (call $set_body (i32.const 0) (i32.const 0) (i32.const 1000000)
                  (i32.const 0) (i32.const 9)))
                (drop (call $add (i32.const 1) (i32.const 16) (i32.const 16)
                  (i32.const 48) (i32.const 4)))
                (i32.const {}))"#,
            abi(answer)
        )
    });
    from_wat(&format!(
        r#"(module
          (import "env" "proxy_set_buffer_bytes"
            (func $set_body (param i32 i32 i32 i32 i32) (result i32)))
          (import "env" "proxy_add_header_map_value"
            (func $add (param i32 i32 i32 i32 i32) (result i32)))
          (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))
          (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
          (import "env" "proxy_set_tick_period_milliseconds"
            (func $period (param i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "rewritten")
          (data (i32.const 16) "x-filter-trailer")
          (data (i32.const 48) "seen")
          (global $heap (mut i32) (i32.const 4096))
          (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
            (local $at i32)
            (local.set $at (global.get $heap))
            (global.set $heap (i32.add (global.get $heap) (local.get $size)))
            (local.get $at))
          (func (export "proxy_on_context_create") (param i32 i32))
          (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
          (func (export "proxy_on_configure") (param i32 i32) (result i32)
            (drop (call $period (i32.const 1000)))
            (i32.const 1))
          (func (export "proxy_on_tick") (param i32)
            (drop (call $effective (i32.const 2)))
            (drop (call $continue (i32.const 0))))
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))
          (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
            (i32.const {body}))
          {trailers}
          (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
          (func (export "proxy_on_log") (param i32))
          (func (export "proxy_on_delete") (param i32)))"#,
        body = abi(body_answer),
    ))
}

const CLIENT_TRAILER: (&str, &str) = ("x-client-trailer", "1");

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn request_trailers_without_a_callback_release_everything_the_filter_held() {
    let module = trailers_module(Action::Pause, None);
    let mut host =
        Host::with_module(module, Flavor::Envoy).body_delivery(BodyDelivery::WhileHeadersPaused);
    host.start_vm("").expect("configured");
    let vm = host.vm(0);
    let request = vm.request(&[(":method", "POST"), (":path", "/")], &[]);
    assert_eq!(vm.send_headers(request, false), Action::Pause);
    assert_eq!(vm.send_body(request, b"body", false), Some(Action::Pause));
    assert!(vm.stream(request).upstream.headers.is_none());
    // Envoy answers Continue for a filter without the callback, and continues the whole stream.
    assert_eq!(
        vm.send_trailers(request, &[CLIENT_TRAILER]),
        Some(Action::Continue)
    );
    let stream = vm.stream(request);
    assert!(stream.upstream.headers.is_some(), "held headers released");
    assert_eq!(stream.upstream_body(), b"body");
    assert_eq!(stream.upstream.trailers, Some(pairs(&[CLIENT_TRAILER])));
    stream.assert_forwarded_whole();
}

#[test]
fn queued_trailers_reach_the_filter_after_the_body_and_paused_ones_wait_for_resume() {
    let module = trailers_module(Action::Pause, Some(Action::Pause));
    let mut host =
        Host::with_module(module, Flavor::Envoy).body_delivery(BodyDelivery::AfterHeadersResume);
    host.start_vm("").expect("configured");
    let vm = host.vm(0);
    let request = vm.request(&[(":method", "POST"), (":path", "/")], &[]);
    assert_eq!(request, 2, "the stream the module resumes on its tick");
    assert_eq!(vm.send_headers(request, false), Action::Pause);
    // Paused headers stop everything: body and trailers queue in the host.
    assert_eq!(vm.send_body(request, b"body", false), None);
    assert_eq!(vm.send_trailers(request, &[CLIENT_TRAILER]), None);
    assert_eq!(vm.stream(request).trailers_state, TrailersState::Queued);
    assert_eq!(
        vm.stream(request).actions.len(),
        1,
        "only the headers so far"
    );

    // Resumed: the headers go; the body reaches the filter, then the trailers, both paused.
    vm.tick();
    let stream = vm.stream(request);
    assert_eq!(
        stream.actions,
        [
            ("request_headers", Action::Pause),
            ("request_body", Action::Pause),
            ("request_trailers", Action::Pause)
        ]
    );
    assert!(stream.upstream.headers.is_some());
    assert!(stream.upstream_body().is_empty() && stream.upstream.trailers.is_none());
    assert!(!stream.upstream.complete);

    // Resumed again: the body it replaced and the trailers it added go on.
    vm.tick();
    let stream = vm.stream(request);
    assert_eq!(stream.upstream_body(), b"rewritten");
    assert_eq!(
        stream.upstream.trailers,
        Some(pairs(&[CLIENT_TRAILER, ("x-filter-trailer", "seen")]))
    );
    stream.assert_forwarded_whole();
}

#[test]
fn the_body_can_be_replaced_in_the_trailers_callback_only_while_the_filter_holds_it() {
    let module = trailers_module(Action::Continue, Some(Action::Continue));
    let mut host =
        Host::with_module(module, Flavor::Envoy).body_delivery(BodyDelivery::WhileHeadersPaused);
    host.start_vm("").expect("configured");
    let vm = host.vm(0);
    let request = vm.request(&[(":method", "POST"), (":path", "/")], &[]);
    vm.send_headers(request, false);
    // Continue on the body lets the headers and the body go: Envoy holds no buffer for the
    // filter to change any more.
    assert_eq!(
        vm.send_body(request, b"body", false),
        Some(Action::Continue)
    );
    assert_eq!(
        vm.send_trailers(request, &[CLIENT_TRAILER]),
        Some(Action::Continue)
    );
    let stream = vm.stream(request);
    assert_eq!(
        stream.upstream_body(),
        b"body",
        "the late replacement is refused"
    );
    assert_eq!(stream.upstream_trailer("x-filter-trailer"), Some("seen"));
    stream.assert_forwarded_whole();
}
