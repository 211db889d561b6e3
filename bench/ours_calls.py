"""The host calls our `store_free` mode makes per request, by import, read from the host-call
budget (tests/host_call_budget.rs, whose counts bench/results.md section 3 shows), and the
`body_round_trip` fields of a floor that makes the same calls with no decision behind them.

Read at import, so that the floors follow the filter: a change to ours' calls changes the
floors measured beside it in the same run.
"""
import re
from pathlib import Path

BUDGETS = Path(__file__).resolve().parent.parent / "tests" / "host_call_budget.rs"
BUDGET_ROW = re.compile(r'\("(\w+)", "(\w+)", (\d+), \d+, \d+\)')
MODE = "store_free"
# What the `at_headers` routed floor makes by itself per request (1 KB body: one chunk): the
# route header and its re-match, `content-length` removed, the chunk copied out and back.
STREAMED_ROUTED = {"proxy_replace_header_map_value": 1, "proxy_call_foreign_function": 1,
                   "proxy_remove_header_map_value": 1, "proxy_get_buffer_bytes": 1,
                   "proxy_set_buffer_bytes": 1}
# Each `body_round_trip` field that adds calls, and the import it calls.
FIELDS = {"header_reads": "proxy_get_header_map_value",
          "header_writes": "proxy_replace_header_map_value",
          "shared_reads": "proxy_get_shared_data",
          "shared_writes": "proxy_set_shared_data",
          "counter_increments": "proxy_increment_metric",
          "clock_reads": "proxy_get_current_time_nanoseconds",
          "response_reads": "proxy_get_buffer_bytes",
          "response_header_reads": "proxy_get_header_map_value",
          "histogram_records": "proxy_record_metric"}
# Fields that share their import with a request-side field: (that field, how many of ours'
# calls of the import are response-side). The budget counts calls per import, not per
# callback, so the split is read from the code. Ours' response-side header reads in
# store_free, at a 200's headers: `:status` (src/flow/retry.rs judge_response; `retry-after`
# only on a 429) and `content-type` (src/flow/meter.rs, a successful answer's meter): 2. The
# other 3 are the request's (its two control headers, src/flow/request.rs
# strip_control_headers, and `:path`); the budget's 65 bytes of header names out of the VM add
# up with exactly this split.
# `response_reads` needs no split: the floor's own request chunk copy (STREAMED_ROUTED) is
# ours' request-body read, and ours' other read is its meter's of the response chunk.
# Clock reads are not split: the floor makes all of them on the request side (`clock_reads`),
# while ours' meter also reads the clock at the response's headers and end for its samples.
RESPONSE_SIDE = {"response_header_reads": ("header_reads", 2)}


def calls_per_request(mode=MODE, budgets=BUDGETS):
    """{import: calls per request} for `mode` from the budget table."""
    text = Path(budgets).read_text()
    try:
        table = text.split("// BEGIN BUDGETS", 1)[1].split("// END BUDGETS", 1)[0]
    except IndexError:
        raise ValueError(f"{budgets}: no BEGIN/END BUDGETS markers") from None
    calls = {name: int(count) for row_mode, name, count in BUDGET_ROW.findall(table)
             if row_mode == mode}
    if not calls:
        raise ValueError(f"{budgets}: no budget rows for mode {mode}")
    return calls


def floor_calls(fields):
    """{import: calls per request} the streamed routed floor makes with `fields` on top."""
    calls = dict(STREAMED_ROUTED)
    for field, name in FIELDS.items():
        calls[name] = calls.get(name, 0) + fields.get(field, 0)
    # A compare-and-swap write reads the value with its cas first.
    calls["proxy_get_shared_data"] += fields.get("shared_writes", 0)
    return {name: count for name, count in calls.items() if count}


def like_ours(calls):
    """(fields, differences): the `body_round_trip` fields that, on top of the streamed routed
    floor, make `calls` (`calls_per_request()`), and {import: ours' calls minus the floor's}
    where they still differ (empty when the floor makes exactly ours' calls: a kind no field
    makes, or ours making fewer of a kind than the floor does by itself, would show there).
    Each of ours' `proxy_set_shared_data` is taken as a compare-and-swap write, which accounts
    for one of its `proxy_get_shared_data`; its header reads are split by RESPONSE_SIDE."""
    left = {name: count - STREAMED_ROUTED.get(name, 0) for name, count in calls.items()}
    writes = max(left.get("proxy_set_shared_data", 0), 0)
    left["proxy_get_shared_data"] = left.get("proxy_get_shared_data", 0) - writes
    fields = {field: max(left.get(name, 0), 0) for field, name in FIELDS.items()}
    for field, (request_side, count) in RESPONSE_SIDE.items():
        fields[field] = min(count, fields[request_side])
        fields[request_side] -= fields[field]
    made = floor_calls(fields)
    differences = {name: calls.get(name, 0) - made.get(name, 0) for name in set(calls) | set(made)}
    return fields, {name: count for name, count in sorted(differences.items()) if count}


def shared_only(fields):
    """`like_ours`'s shared-data calls alone."""
    return {name: fields[name] for name in ("shared_reads", "shared_writes")}


def counters_only(fields):
    """`like_ours`'s counter increments alone."""
    return {"counter_increments": fields["counter_increments"]}
