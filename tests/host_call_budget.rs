#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure should stop the test loudly
//! What one request costs in host calls and in bytes copied across the ABI, per mode of the
//! filter, counted by the test host (it sees every call): a figure that is the same on every
//! machine, so a regression shows without timing anything (issue 17).
//!
//! Each mode runs the Envoy build as `make bench` does (`allow_on_headers_stop_iteration: true`,
//! one worker, a 1 KB chat body, the seed's two providers), warms up, then counts each of a few
//! whole requests (headers, body, the store's reply where it has one, a 200 response, the
//! stream's end). The calls must be the same for every measured request; bytes are the largest
//! of them (provider and model names differ in length). Work done on the tick (background
//! refresh, scrapes, probes) is not per request and is not counted.
//!
//! The budgets below are today's counts: a mode whose count of any import, or bytes in either
//! direction, grows past them fails. Lower counts pass and are reported, so the budget can be
//! tightened.
//!
//! Beside the calls, the wasm instructions the filter runs per request (wasmtime's fuel, in the
//! same requests): its own work, the share of its CPU time that host calls do not explain. A
//! mode more than [`INSTRUCTION_SLACK_PERCENT`] over its budget fails: the count is exact for
//! one build, and the slack only absorbs a rebuild with another wasm-opt. `UPDATE_BUDGETS=1 cargo test --test host_call_budget` rewrites the table below and
//! the host-call section of `bench/results.md` from what was measured.

mod host;

#[path = "host_call_budget/modes.rs"]
mod modes;
#[path = "host_call_budget/table.rs"]
mod table;

use std::collections::BTreeMap;

use host::Tally;
use modes::{measure, Mode, MODES};
use table::{Budget, InstructionBudget, Measured};

/// How far past its budget a mode's wasm instructions may go before the test fails.
const INSTRUCTION_SLACK_PERCENT: u64 = 2;

// BEGIN BUDGETS (written by UPDATE_BUDGETS=1: mode, import, calls, bytes out of the VM, bytes into it)
#[rustfmt::skip]
const BUDGETS: &[Budget] = &[
    ("store_free", "proxy_call_foreign_function", 1, 17, 0),
    ("store_free", "proxy_get_buffer_bytes", 2, 0, 1087),
    ("store_free", "proxy_get_current_time_nanoseconds", 3, 0, 0),
    ("store_free", "proxy_get_header_map_value", 5, 65, 39),
    ("store_free", "proxy_get_shared_data", 4, 84, 1),
    ("store_free", "proxy_increment_metric", 3, 0, 0),
    ("store_free", "proxy_record_metric", 2, 0, 0),
    ("store_free", "proxy_remove_header_map_value", 1, 14, 0),
    ("store_free", "proxy_replace_header_map_value", 2, 65, 0),
    ("store_free", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("store_free", "proxy_set_shared_data", 1, 26, 0),
    ("store_free_pools", "proxy_call_foreign_function", 1, 17, 0),
    ("store_free_pools", "proxy_get_buffer_bytes", 2, 0, 1087),
    ("store_free_pools", "proxy_get_current_time_nanoseconds", 4, 0, 0),
    ("store_free_pools", "proxy_get_header_map_value", 6, 79, 43),
    ("store_free_pools", "proxy_get_shared_data", 4, 84, 1),
    ("store_free_pools", "proxy_increment_metric", 3, 0, 0),
    ("store_free_pools", "proxy_record_metric", 2, 0, 0),
    ("store_free_pools", "proxy_replace_header_map_value", 3, 83, 0),
    ("store_free_pools", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("store_free_pools", "proxy_set_shared_data", 1, 26, 0),
    ("per_request", "proxy_call_foreign_function", 1, 17, 0),
    ("per_request", "proxy_continue_stream", 1, 0, 0),
    ("per_request", "proxy_get_buffer_bytes", 3, 0, 1107),
    ("per_request", "proxy_get_current_time_nanoseconds", 4, 0, 0),
    ("per_request", "proxy_get_header_map_value", 7, 86, 46),
    ("per_request", "proxy_get_shared_data", 3, 59, 0),
    ("per_request", "proxy_http_call", 1, 118, 0),
    ("per_request", "proxy_increment_metric", 3, 0, 0),
    ("per_request", "proxy_record_metric", 2, 0, 0),
    ("per_request", "proxy_replace_header_map_value", 3, 83, 0),
    ("per_request", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("per_request", "proxy_set_effective_context", 1, 0, 0),
    ("per_request_pools", "proxy_call_foreign_function", 1, 17, 0),
    ("per_request_pools", "proxy_continue_stream", 1, 0, 0),
    ("per_request_pools", "proxy_get_buffer_bytes", 3, 0, 1107),
    ("per_request_pools", "proxy_get_current_time_nanoseconds", 5, 0, 0),
    ("per_request_pools", "proxy_get_header_map_value", 7, 86, 46),
    ("per_request_pools", "proxy_get_shared_data", 3, 59, 0),
    ("per_request_pools", "proxy_http_call", 1, 118, 0),
    ("per_request_pools", "proxy_increment_metric", 3, 0, 0),
    ("per_request_pools", "proxy_record_metric", 2, 0, 0),
    ("per_request_pools", "proxy_replace_header_map_value", 3, 83, 0),
    ("per_request_pools", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("per_request_pools", "proxy_set_effective_context", 1, 0, 0),
    ("background", "proxy_call_foreign_function", 1, 17, 0),
    ("background", "proxy_get_buffer_bytes", 2, 0, 1087),
    ("background", "proxy_get_current_time_nanoseconds", 3, 0, 0),
    ("background", "proxy_get_header_map_value", 5, 65, 39),
    ("background", "proxy_get_shared_data", 4, 87, 22),
    ("background", "proxy_increment_metric", 3, 0, 0),
    ("background", "proxy_record_metric", 2, 0, 0),
    ("background", "proxy_remove_header_map_value", 1, 14, 0),
    ("background", "proxy_replace_header_map_value", 2, 65, 0),
    ("background", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("background_pools", "proxy_call_foreign_function", 1, 17, 0),
    ("background_pools", "proxy_get_buffer_bytes", 2, 0, 1087),
    ("background_pools", "proxy_get_current_time_nanoseconds", 4, 0, 0),
    ("background_pools", "proxy_get_header_map_value", 6, 79, 43),
    ("background_pools", "proxy_get_shared_data", 4, 87, 22),
    ("background_pools", "proxy_increment_metric", 3, 0, 0),
    ("background_pools", "proxy_record_metric", 2, 0, 0),
    ("background_pools", "proxy_replace_header_map_value", 3, 83, 0),
    ("background_pools", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("engine_metrics", "proxy_call_foreign_function", 1, 17, 0),
    ("engine_metrics", "proxy_get_buffer_bytes", 2, 0, 1087),
    ("engine_metrics", "proxy_get_current_time_nanoseconds", 3, 0, 0),
    ("engine_metrics", "proxy_get_header_map_value", 5, 65, 39),
    ("engine_metrics", "proxy_get_shared_data", 5, 117, 54),
    ("engine_metrics", "proxy_increment_metric", 3, 0, 0),
    ("engine_metrics", "proxy_record_metric", 2, 0, 0),
    ("engine_metrics", "proxy_remove_header_map_value", 1, 14, 0),
    ("engine_metrics", "proxy_replace_header_map_value", 2, 65, 0),
    ("engine_metrics", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("engine_metrics_pools", "proxy_call_foreign_function", 1, 17, 0),
    ("engine_metrics_pools", "proxy_get_buffer_bytes", 2, 0, 1087),
    ("engine_metrics_pools", "proxy_get_current_time_nanoseconds", 4, 0, 0),
    ("engine_metrics_pools", "proxy_get_header_map_value", 6, 79, 43),
    ("engine_metrics_pools", "proxy_get_shared_data", 5, 117, 54),
    ("engine_metrics_pools", "proxy_increment_metric", 3, 0, 0),
    ("engine_metrics_pools", "proxy_record_metric", 2, 0, 0),
    ("engine_metrics_pools", "proxy_replace_header_map_value", 3, 83, 0),
    ("engine_metrics_pools", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("retry", "proxy_call_foreign_function", 1, 17, 0),
    ("retry", "proxy_get_buffer_bytes", 2, 0, 1087),
    ("retry", "proxy_get_current_time_nanoseconds", 4, 0, 0),
    ("retry", "proxy_get_header_map_pairs", 1, 0, 159),
    ("retry", "proxy_get_header_map_value", 6, 79, 43),
    ("retry", "proxy_get_shared_data", 4, 84, 1),
    ("retry", "proxy_increment_metric", 3, 0, 0),
    ("retry", "proxy_record_metric", 2, 0, 0),
    ("retry", "proxy_replace_header_map_value", 3, 83, 0),
    ("retry", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("retry", "proxy_set_shared_data", 1, 26, 0),
    ("rate_limits", "proxy_call_foreign_function", 1, 17, 0),
    ("rate_limits", "proxy_get_buffer_bytes", 2, 0, 1087),
    ("rate_limits", "proxy_get_current_time_nanoseconds", 3, 0, 0),
    ("rate_limits", "proxy_get_header_map_pairs", 1, 0, 336),
    ("rate_limits", "proxy_get_header_map_value", 5, 65, 39),
    ("rate_limits", "proxy_get_shared_data", 7, 152, 1),
    ("rate_limits", "proxy_increment_metric", 3, 0, 0),
    ("rate_limits", "proxy_record_metric", 2, 0, 0),
    ("rate_limits", "proxy_remove_header_map_value", 1, 14, 0),
    ("rate_limits", "proxy_replace_header_map_value", 2, 65, 0),
    ("rate_limits", "proxy_set_buffer_bytes", 1, 1037, 0),
    ("rate_limits", "proxy_set_shared_data", 1, 26, 0),
];
#[rustfmt::skip]
const INSTRUCTION_BUDGETS: &[InstructionBudget] = &[
    ("store_free", 34937),
    ("store_free_pools", 51403),
    ("per_request", 53853),
    ("per_request_pools", 67942),
    ("background", 41149),
    ("background_pools", 56854),
    ("engine_metrics", 48018),
    ("engine_metrics_pools", 64362),
    ("retry", 64631),
    ("rate_limits", 71526),
];
// END BUDGETS

#[test]
fn every_mode_stays_within_its_host_call_budget() {
    let measured: Vec<(&Mode, Measured)> = MODES.iter().map(|mode| (mode, measure(mode))).collect();
    if let Some(path) = std::env::var_os("HOST_CALL_TABLE") {
        table::write_table(std::path::Path::new(&path), &measured);
    }
    if std::env::var_os("UPDATE_BUDGETS").is_some() {
        table::update_files(&measured);
        return;
    }
    let mut over = Vec::new();
    let mut under = Vec::new();
    for (mode, measured) in &measured {
        let rows = &measured.rows;
        let budget: BTreeMap<&str, Tally> = BUDGETS
            .iter()
            .filter(|budget| budget.0 == mode.name)
            .map(|&(_, import, calls, bytes_out, bytes_in)| {
                (
                    import,
                    Tally {
                        calls,
                        bytes_out,
                        bytes_in,
                    },
                )
            })
            .collect();
        assert!(
            !budget.is_empty(),
            "mode {} has no budget: run UPDATE_BUDGETS=1",
            mode.name
        );
        for row in rows {
            let allowed = budget.get(row.import.as_str()).copied().unwrap_or_default();
            let got = row.tally;
            if got.calls > allowed.calls
                || got.bytes_out > allowed.bytes_out
                || got.bytes_in > allowed.bytes_in
            {
                over.push(format!(
                    "{} {}: {got:?}, budget {allowed:?}",
                    mode.name, row.import
                ));
            } else if got != allowed {
                under.push(format!(
                    "{} {}: {got:?}, budget {allowed:?}",
                    mode.name, row.import
                ));
            }
        }
        for import in budget.keys() {
            if !rows.iter().any(|row| row.import == *import) {
                under.push(format!("{} {import}: no longer called", mode.name));
            }
        }
        let allowed = INSTRUCTION_BUDGETS
            .iter()
            .find(|budget| budget.0 == mode.name)
            .map_or(0, |budget| budget.1);
        let got = measured.instructions;
        if got * 100 > allowed * (100 + INSTRUCTION_SLACK_PERCENT) {
            over.push(format!(
                "{}: {got} wasm instructions, budget {allowed}",
                mode.name
            ));
        } else if got != allowed {
            under.push(format!(
                "{}: {got} wasm instructions, budget {allowed}",
                mode.name
            ));
        }
    }
    if !under.is_empty() {
        eprintln!(
            "below budget (tighten with UPDATE_BUDGETS=1 cargo test --test host_call_budget):\n  {}",
            under.join("\n  ")
        );
    }
    assert!(
        over.is_empty(),
        "per-request host calls or wasm instructions over budget (if the new cost is intended, record it with \
         UPDATE_BUDGETS=1 cargo test --test host_call_budget and say why in the commit):\n  {}",
        over.join("\n  ")
    );
}
