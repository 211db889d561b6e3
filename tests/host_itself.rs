#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! The test host's own promises, on small modules written in WAT: shared data with Envoy's
//! compare-and-swap across VMs, ticks and time on the host's clock, a local response, and a loud
//! failure naming any import the host does not implement.

mod host;

use std::time::Duration;

use host::{from_wat, Action, Flavor, Host};

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
