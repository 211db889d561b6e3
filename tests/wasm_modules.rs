#![allow(clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly
//! Reads both built modules (`make build`): the Envoy build must load in upstream Envoy, so it
//! may import only proxy-wasm 0.2.1 and WASI; the Higress build adds Higress's Redis calls.

mod host;

use std::collections::BTreeSet;

use host::{filter_module, Build};

struct Module {
    imports: BTreeSet<(String, String)>,
    exports: BTreeSet<String>,
}

fn module(build: Build) -> Module {
    let module = filter_module(build);
    Module {
        imports: module
            .imports()
            .map(|import| {
                assert!(import.ty().func().is_some(), "{import:?} is not a function");
                (import.module().to_string(), import.name().to_string())
            })
            .collect(),
        exports: module
            .exports()
            .map(|export| export.name().to_string())
            .collect(),
    }
}

/// The proxy-wasm 0.2.1 ABI's host functions (module `env`).
const PROXY_WASM_0_2_1: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_configuration",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_add_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_call_foreign_function",
    "proxy_define_metric",
    "proxy_get_metric",
    "proxy_record_metric",
    "proxy_increment_metric",
    "proxy_done",
];

fn foreign_imports(module: &Module) -> Vec<String> {
    module
        .imports
        .iter()
        .filter(|(namespace, name)| {
            !(namespace == "wasi_snapshot_preview1"
                || namespace == "env" && PROXY_WASM_0_2_1.contains(&name.as_str()))
        })
        .map(|(namespace, name)| format!("{namespace}.{name}"))
        .collect()
}

#[test]
fn envoy_build_imports_only_proxy_wasm_0_2_1_and_wasi() {
    let envoy = module(Build::Envoy);
    assert_eq!(foreign_imports(&envoy), Vec::<String>::new());
    assert!(envoy.exports.contains("proxy_abi_version_0_2_1"));
    assert!(envoy.exports.contains("proxy_on_request_headers"));
    assert!(!envoy.exports.contains("proxy_on_redis_call_response"));
}

#[test]
fn higress_build_adds_exactly_the_redis_calls() {
    let higress = module(Build::Higress);
    assert_eq!(
        foreign_imports(&higress),
        ["env.proxy_redis_call", "env.proxy_redis_init"]
    );
    assert!(higress.exports.contains("proxy_on_redis_call_response"));
    assert!(higress.exports.contains("proxy_abi_version_0_2_1"));
}

/// The module budget: each build, as `make build` leaves it (after `wasm-opt -Oz`), is at most
/// 512 KB, so that readable code wins over the last kilobytes without the modules growing
/// unnoticed.
#[test]
fn both_modules_fit_the_size_budget() {
    const BUDGET: u64 = 512 * 1024;
    for build in [Build::Envoy, Build::Higress] {
        let path = host::module_path(build);
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .len();
        assert!(
            size <= BUDGET,
            "{}: {size} bytes, over {BUDGET}",
            path.display()
        );
    }
}
