#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! Every host call the built filter makes, under every non-OK status the proxy-wasm ABI (or
//! the gateway's own code) lets it answer, both builds: the VM must survive, the request must
//! still be answered (forwarded whole, or answered by the filter), and the next request on the
//! same VM must work normally. One table says which exchange makes the filter call what; an
//! import of the built module that is in no row fails `every_import_has_a_row`, so a new host
//! call cannot go untested. A panic in the filter aborts, which traps: the host then marks the
//! VM failed, as Envoy does, and every later request on it is answered 503.
//!
//! Statuses are those proxy-wasm ABI 0.2.1 lists for each call (`proxy-wasm/spec`
//! `abi-versions/v0.2.1/README.md`), `InvalidMemoryAccess` included (Envoy answers it when it
//! cannot copy a value into the VM, its allocator having failed), plus what Envoy 1.40 answers
//! beyond the list: `InternalFailure` from `proxy_get_property` (`Context::getProperty`), the
//! foreign functions' own statuses from `proxy_call_foreign_function` (`foreign.cc`), and for
//! Higress's Redis calls what its fork answers (`redisInit`: `BadArgument`; `redisCall`:
//! `BadArgument`, `InternalFailure`). `proxy_set_tick_period_milliseconds` answers OK only.

mod host;

#[path = "host_statuses/scenarios.rs"]
mod scenarios;
#[path = "host_statuses/strict_host.rs"]
mod strict_host;

use std::panic::{catch_unwind, AssertUnwindSafe};

use host::{Answer, BufferType, Build, Errno, Fault, MapType, Status};
use scenarios::Gateway;
use scenarios::Scenario::{self, *};
use Status::*;

/// One row: `call` answers each of `answers` (one at a time, to every call while the exchange
/// runs, narrowed to one map or buffer by `on`) while `scenario` runs.
struct Row {
    call: &'static str,
    answers: Vec<Answer>,
    scenario: Scenario,
    on: Option<On>,
    /// The one build whose exchange makes this call (`None`: both, if the module imports it).
    only_on: Option<Build>,
    expect: Expect,
}

/// What must hold of the request the exchange made under the status.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// It reached the upstream whole, or the filter answered it; the answer reached the client.
    Answered,
    /// Nothing can be done for it: the status says its context is gone (Envoy answers
    /// `proxy_set_effective_context` `BadArgument` for a stream that ended). The VM survives
    /// and the next request works.
    Survives,
}

#[derive(Clone, Copy)]
enum On {
    Map(MapType),
    Buffer(BufferType),
}

/// `name: call [statuses] in Scenario, on: Map(..) or Buffer(..), only: Build, expect: Expect;`
/// (the last three optional): each row is a test on each build, `envoy::name` and
/// `higress::name`.
macro_rules! host_calls {
    ($($name:ident: $call:literal [$($answer:expr),*] in $scenario:ident
       $(, on: $on:expr)? $(, only: $build:ident)? $(, expect: $expect:ident)?;)*) => {
        mod rows {
            use super::*;
            $(pub fn $name() -> Row {
                Row {
                    call: $call,
                    answers: vec![$(Answer::from($answer)),*],
                    scenario: $scenario,
                    on: given_or!(None; $(Some($on))?),
                    only_on: given_or!(None; $(Some(Build::$build))?),
                    expect: given_or!(Expect::Answered; $(Expect::$expect)?),
                }
            })*
        }
        fn table() -> Vec<Row> {
            vec![$(rows::$name()),*]
        }
        mod envoy {
            $(#[test]
            fn $name() {
                super::run(super::Build::Envoy, super::rows::$name())
            })*
        }
        mod higress {
            $(#[test]
            fn $name() {
                super::run(super::Build::Higress, super::rows::$name())
            })*
        }
    };
}

/// The value given, or the default.
macro_rules! given_or {
    ($default:expr;) => {
        $default
    };
    ($default:expr; $given:expr) => {
        $given
    };
}

use BufferType::*;
use MapType::*;
use On::{Buffer, Map};

host_calls! {
    // test name: host call [statuses] in scenario, on: map or buffer, only: build, expect: what;
    log: "proxy_log" [BadArgument, InvalidMemoryAccess] in ChatBodyWhileHeld;
    get_log_level: "proxy_get_log_level" [InvalidMemoryAccess] in Reconfigure;
    get_current_time: "proxy_get_current_time_nanoseconds" [InvalidMemoryAccess] in Chat;
    set_tick_period: "proxy_set_tick_period_milliseconds" [] in Reconfigure;
    random_get: "random_get" [Errno::Inval, Errno::Fault] in Reconfigure;
    get_plugin_configuration: "proxy_get_buffer_bytes" [BadArgument, NotFound, InvalidMemoryAccess]
        in Reconfigure, on: Buffer(PluginConfiguration);
    get_request_body: "proxy_get_buffer_bytes" [BadArgument, NotFound, InvalidMemoryAccess]
        in ChatBodyWhileHeld, on: Buffer(RequestBody);
    get_store_reply_body: "proxy_get_buffer_bytes" [BadArgument, NotFound, InvalidMemoryAccess]
        in Chat, on: Buffer(HttpCallResponseBody), only: Envoy;
    get_call_response_body: "proxy_get_buffer_bytes" [BadArgument, NotFound, InvalidMemoryAccess]
        in Retry, on: Buffer(HttpCallResponseBody);
    get_response_body: "proxy_get_buffer_bytes" [BadArgument, NotFound, InvalidMemoryAccess]
        in Chat, on: Buffer(ResponseBody);
    get_redis_reply: "proxy_get_buffer_bytes" [BadArgument, NotFound, InvalidMemoryAccess]
        in Chat, on: Buffer(RedisCallResponse), only: Higress;
    set_request_body: "proxy_set_buffer_bytes" [BadArgument, NotFound, InvalidMemoryAccess]
        in Chat;
    set_request_body_while_held: "proxy_set_buffer_bytes"
        [BadArgument, NotFound, InvalidMemoryAccess] in ChatBodyWhileHeld;
    get_request_headers: "proxy_get_header_map_pairs" [BadArgument, InvalidMemoryAccess]
        in ChatBodyWhileHeld, on: Map(RequestHeaders);
    get_store_reply_status: "proxy_get_header_map_value"
        [BadArgument, NotFound, InvalidMemoryAccess]
        in Chat, on: Map(HttpCallResponseHeaders), only: Envoy;
    get_call_response_headers: "proxy_get_header_map_pairs" [BadArgument, InvalidMemoryAccess]
        in Retry, on: Map(HttpCallResponseHeaders);
    get_request_header: "proxy_get_header_map_value" [BadArgument, NotFound, InvalidMemoryAccess]
        in Chat;
    get_response_header: "proxy_get_header_map_value" [BadArgument, NotFound, InvalidMemoryAccess]
        in Retry, on: Map(ResponseHeaders);
    replace_request_header: "proxy_replace_header_map_value" [BadArgument, InvalidMemoryAccess]
        in Chat;
    remove_request_header: "proxy_remove_header_map_value" [BadArgument, InvalidMemoryAccess]
        in Chat;
    get_property: "proxy_get_property"
        [NotFound, SerializationFailure, InternalFailure, InvalidMemoryAccess] in StatusPage;
    get_shared_data: "proxy_get_shared_data" [NotFound, InvalidMemoryAccess] in Chat;
    get_shared_data_on_tick: "proxy_get_shared_data" [NotFound, InvalidMemoryAccess] in ProbeTick;
    set_health_record: "proxy_set_shared_data" [CasMismatch, InvalidMemoryAccess] in Retry;
    set_probe_lease: "proxy_set_shared_data" [CasMismatch, InvalidMemoryAccess] in ProbeTick;
    continue_stream: "proxy_continue_stream" [BadArgument, Unimplemented] in Chat;
    send_status_page: "proxy_send_local_response" [InvalidMemoryAccess] in StatusPage;
    send_retry_reply: "proxy_send_local_response" [InvalidMemoryAccess] in Retry;
    dispatch_store_read: "proxy_http_call" [BadArgument, InternalFailure, InvalidMemoryAccess]
        in Chat, only: Envoy;
    dispatch_retry: "proxy_http_call" [BadArgument, InternalFailure, InvalidMemoryAccess] in Retry;
    dispatch_probe: "proxy_http_call" [BadArgument, InternalFailure, InvalidMemoryAccess]
        in ProbeTick;
    clear_route_cache: "proxy_call_foreign_function"
        [NotFound, BadArgument, SerializationFailure, InternalFailure, InvalidMemoryAccess] in Chat;
    set_effective_context: "proxy_set_effective_context" [BadArgument] in Chat, expect: Survives;
    set_effective_context_on_tick: "proxy_set_effective_context" [BadArgument] in ProbeTick,
        expect: Survives;
    define_metric: "proxy_define_metric" [BadArgument, InvalidMemoryAccess] in Chat;
    increment_metric: "proxy_increment_metric" [NotFound, BadArgument] in Chat;
    record_metric: "proxy_record_metric" [NotFound, BadArgument] in Chat;
    redis_init: "proxy_redis_init" [BadArgument, InvalidMemoryAccess] in Reconfigure;
    redis_call: "proxy_redis_call" [BadArgument, InternalFailure, InvalidMemoryAccess] in Chat;
}

/// Imports the filter links (the SDK's, std's) but calls on no path; `never_called` checks it.
const NEVER_CALLED: &[(&str, &str)] = &[
    ("proxy_set_property", "no property is set"),
    ("proxy_add_header_map_value", "headers are replaced"),
    ("proxy_set_header_map_pairs", "headers change one by one"),
    ("proxy_close_stream", "no stream is reset"),
    ("proxy_get_status", "a reply's :status is read"),
    ("proxy_done", "on_done answers done"),
    ("proxy_grpc_call", "no gRPC"),
    ("proxy_grpc_stream", "no gRPC"),
    ("proxy_grpc_send", "no gRPC"),
    ("proxy_grpc_cancel", "no gRPC"),
    ("proxy_grpc_close", "no gRPC"),
    ("proxy_register_shared_queue", "no queue"),
    ("proxy_resolve_shared_queue", "no queue"),
    ("proxy_enqueue_shared_queue", "no queue"),
    ("proxy_dequeue_shared_queue", "no queue"),
    ("environ_get", "no environment is read"),
    ("environ_sizes_get", "no environment is read"),
    ("fd_write", "logs go through proxy_log"),
    ("proc_exit", "the filter never exits"),
];

const SCENARIOS: [Scenario; 6] = [
    Chat,
    ChatBodyWhileHeld,
    Retry,
    StatusPage,
    ProbeTick,
    Reconfigure,
];

/// Runs `row` under each of its answers; fails naming every answer the filter did not take.
fn run(build: Build, row: Row) {
    let imported = host::filter_module(build)
        .imports()
        .any(|import| import.name() == row.call);
    if !imported || row.only_on.is_some_and(|only| only != build) {
        return; // this build does not make the call here (every_import_has_a_row checks rows)
    }
    if row.answers.is_empty() {
        let mut gateway = Gateway::start(build, row.scenario);
        gateway.exchange();
        assert!(
            gateway.host.calls(row.call) > 0,
            "{:?} never calls {}",
            row.scenario,
            row.call
        );
        return;
    }
    let failures: Vec<String> = row
        .answers
        .iter()
        .filter_map(|&answer| {
            let outcome = catch_unwind(AssertUnwindSafe(|| under(build, &row, answer)));
            let why = match outcome {
                Ok(outcome) => outcome.err()?,
                Err(panic) => panic_text(panic),
            };
            Some(format!(
                "{} answering {answer:?} in {:?}: {why}",
                row.call, row.scenario
            ))
        })
        .collect();
    assert!(failures.is_empty(), "{build:?}:\n{}", failures.join("\n"));
}

/// One exchange of the row's scenario with `call` answering `answer`, then one without: the VM
/// survives both, the first is answered, the second is normal.
fn under(build: Build, row: &Row, answer: Answer) -> Result<(), String> {
    let mut gateway = Gateway::start(build, row.scenario);
    let fault = match row.on {
        Some(On::Map(map)) => Fault::new(row.call, answer).on_map(map),
        Some(On::Buffer(buffer)) => Fault::new(row.call, answer).on_buffer(buffer),
        None => Fault::new(row.call, answer),
    };
    gateway.host.inject(fault);
    let request = gateway.exchange();
    gateway.host.clear_faults();
    survived(&mut gateway)?;
    if gateway.host.injected(row.call) == 0 {
        return Err("the exchange never made the call: fix the table".to_string());
    }
    if row.expect == Expect::Answered {
        gateway.assert_answered(request);
    }
    survived(&mut gateway)?;
    let next = gateway.exchange();
    survived(&mut gateway)?;
    gateway.assert_normal(next);
    Ok(())
}

/// `Err` naming the trap (and the panic the filter logged) when the VM died.
fn survived(gateway: &mut Gateway) -> Result<(), String> {
    let Some(trap) = gateway.vm().trap() else {
        return Ok(());
    };
    // The SDK's panic hook logs the panic at level critical; when logging is what fails, the
    // trap's own cause is all there is.
    let cause = trap
        .message
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty());
    let panic = trap
        .last_logs
        .iter()
        .find(|line| line.level == 5)
        .map_or_else(
            || format!("nothing logged; {}", cause.unwrap_or_default().trim()),
            |line| line.message.replace('\n', " "),
        );
    Err(format!("VM trapped in {}: {panic}", trap.export))
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
        .unwrap_or_default();
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn every_import_has_a_row() {
    let covered: Vec<&str> = table()
        .iter()
        .map(|row| row.call)
        .chain(NEVER_CALLED.iter().map(|(call, _)| *call))
        .collect();
    for build in [Build::Envoy, Build::Higress] {
        for import in host::filter_module(build).imports() {
            assert!(
                covered.contains(&import.name()),
                "{build:?} imports {}.{}, which no row of host_statuses.rs exercises",
                import.module(),
                import.name()
            );
        }
    }
}

#[test]
fn never_called() {
    for build in [Build::Envoy, Build::Higress] {
        for scenario in SCENARIOS {
            let mut gateway = Gateway::start(build, scenario);
            let request = gateway.exchange();
            gateway.assert_answered(request);
            for (call, why) in NEVER_CALLED {
                let calls = gateway.host.calls(call);
                assert_eq!(
                    calls, 0,
                    "{build:?} {scenario:?} calls {call} ({why}?): add a row"
                );
            }
        }
    }
}
