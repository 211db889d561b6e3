#!/usr/bin/env python3
"""`make bench`: what the filter costs beside plain Envoy and beside LiteLLM, on loopback.

    .venv/bin/python bench/run.py [--rounds N] [--seconds S] [--quick] [--skip-native]
                                  [--skip-litellm] [--skip-rewrite]

Every gateway variant runs at once for the whole run; each measurement round visits them in a
rotated order, so that a slow minute of the machine lands on every variant alike. The headline
is each variant's gateway CPU per request minus plain Envoy's in the same round, with its spread
over rounds (bench/report.py). Writes bench/results.json (every run), bench/results.md and
bench/chart.png. Every loop is bounded: rounds x variants x a fixed wrk duration.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "rewrite"), str(BENCH.parent / "scripts")]

import bodies  # noqa: E402
import cpu_profile  # noqa: E402
import go_peer  # noqa: E402
import peer  # noqa: E402
import report  # noqa: E402
import wrk  # noqa: E402
from envoy_configs import FRAMING_ANSWER_HEADER, FRAMING_PROBE_HEADER  # noqa: E402
from gateways import BENCH_WASM, CHAT_PATH, GATEWAYS, HISTOGRAM_FLUSH_S, LOAD_CPUS, ROOT  # noqa: E402
from gateways import Gateways  # noqa: E402

# The floors that make ours' calls kind by kind (shared_like_ours … calls_like_ours) add
# ~55 s each to a default run (6 rounds of 5 s loaded and 2 s unloaded, warm-up, profile).
OVERHEAD = ["plain", "empty", "body_trip", "routed_trip", "routed_calls", "shared_like_ours",
            "counters_like_ours", "streamed_routed", "calls_like_ours", "webdis_call",
            "webdis_shared", "store_free", "per_request", "store_down", "background", "engine",
            "go_peer"]
REWRITE = ["plain", "background", "serde", "buffer"]
# Profiled once each, after the rounds: the floors the targets use and one of ours per family.
PROFILED = ["plain", "body_trip", "routed_trip", "routed_calls", "shared_like_ours",
            "counters_like_ours", "streamed_routed", "calls_like_ours", "webdis_call",
            "store_free", "per_request", "background", "engine", "go_peer"]
# Written by `make bench` (HOST_CALL_TABLE=… cargo test --test host_call_budget) before the run.
HOST_CALL_TABLE = ROOT / "target" / "bench" / "host_calls.md"
REWRITE_SIZES = [1024, 100 * 1024, 1024 * 1024, 10 * 1024 * 1024]
LOADED_CONNECTIONS = 32
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Plan:
    def __init__(self, args):
        self.rounds = 1 if args.quick else args.rounds
        self.seconds = 1 if args.quick else args.seconds
        # One connection: latency, not throughput; shorter runs resolve a p50 well enough.
        self.unloaded_seconds = 1 if args.quick else max(1, args.seconds // 2)
        self.rewrite_seconds = 1 if args.quick else 3


def load(url, body, connections, seconds, lua, **options):
    """wrk, on the cores the gateway under test does not own."""
    return wrk.run(url, body, connections, seconds, lua, cpus=LOAD_CPUS, **options)


def rotated(names, by):
    by %= len(names)
    return names[by:] + names[:by]


class RssSampler:
    """The highest resident set size (kB) of `pid` while the `with` block runs."""

    def __init__(self, pid):
        self.pid, self.peak_kb = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(5)

    def _sample(self):
        while not self._done.wait(0.1):
            self.peak_kb = max(self.peak_kb, rss_kb(self.pid))


def cpu_seconds(pid):
    """User + system CPU time `pid` has used so far (from /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_times():
    """The machine's CPU time counters (/proc/stat's first line): user … steal."""
    return [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]


def steal_percent(before, after):
    """Share of CPU time the hypervisor gave to other machines between two `cpu_times()`."""
    spent = [end - start for start, end in zip(before, after)]
    return 100 * spent[7] / max(sum(spent), 1)


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def median_of(runs, key):
    return statistics.median(run[key] for run in runs)


def measure_overhead(targets, pids, plan, tmp, unpin):
    """wrk at LOADED_CONNECTIONS, then at 1 connection, against each target, interleaved;
    `pids` are the processes whose CPU and memory are watched under load.

    Loaded runs keep the gateway on its own core, so that its CPU is its own; `unpin()` then
    lets every process run anywhere for the 1-connection runs, because on a virtual machine a
    wake-up on the other core costs tens of microseconds, which would swamp what a filter adds
    to one request's latency."""
    lua = wrk.script(tmp)
    body = Path(tmp, "chat-1k.json")
    body.write_bytes(bodies.chat_body(1024))
    runs = {name: {"loaded": [], "unloaded": [], "rss_peak_kb": 0} for name in targets}
    for name, url in targets.items():  # warm-up: connections, VM, JIT
        load(url, body, LOADED_CONNECTIONS, 1, lua)
    for round_ in range(plan.rounds):
        for name in rotated(list(targets), round_):
            cpu_before = cpu_seconds(pids[name])
            with RssSampler(pids[name]) as rss:
                loaded = load(targets[name], body, LOADED_CONNECTIONS, plan.seconds, lua)
            # The gateway's own CPU per request: what the filter adds, whatever else the
            # machine was doing at the time.
            loaded["cpu_us_per_request"] = (
                (cpu_seconds(pids[name]) - cpu_before) * 1e6 / max(loaded["requests"], 1))
            runs[name]["rss_peak_kb"] = max(runs[name]["rss_peak_kb"], rss.peak_kb)
            runs[name]["loaded"].append(loaded)
            print(f"  round {round_ + 1} {name}: {loaded['rps']:.0f} req/s, "
                  f"{loaded['cpu_us_per_request']:.0f} us CPU/request", flush=True)
    runs["_profile"] = profile_cpu(targets, pids, plan, body, lua)
    unpin()
    for round_ in range(plan.rounds):
        for name in rotated(list(targets), round_):
            runs[name]["unloaded"].append(
                wrk.run(targets[name], body, 1, plan.unloaded_seconds, lua))
        print(f"  round {round_ + 1} unloaded p50 us: " + ", ".join(
            f"{name} {runs[name]['unloaded'][-1]['p50_us']}" for name in targets), flush=True)
    return runs


def profile_cpu(targets, pids, plan, body, lua):
    """One more loaded wrk run per profiled variant under `perf record` (bench/cpu_profile.py):
    {name: {group: µs per request}}, or {"unavailable": why}."""
    why_not = cpu_profile.available()
    if why_not:
        print(f"  no CPU profile: {why_not}", flush=True)
        return {"unavailable": why_not}
    profiles = {}
    for name in (name for name in PROFILED if name in targets):
        samples, loaded = cpu_profile.record(
            pids[name], lambda: load(targets[name], body, LOADED_CONNECTIONS, plan.seconds, lua))
        profiles[name] = cpu_profile.us_per_request(samples, loaded["requests"])
        print(f"  profile {name}: " + ", ".join(
            f"{group} {us:.1f}" for group, us in profiles[name].items()) + " us/request",
            flush=True)
    return profiles


def measure_rewrite(gws, plan, tmp):
    """One connection, each body size, through a bare Envoy, the filter, a serde_json filter
    and a filter that only buffers; the filter's time is its p50 minus the buffering one's."""
    lua = wrk.script(tmp)
    runs = {}
    for size in REWRITE_SIZES:
        body = Path(tmp, f"chat-{size}.json")
        body.write_bytes(bodies.chat_body(size))
        runs[size] = {name: [] for name in REWRITE}
        for name in REWRITE:  # warm-up
            wrk.run(gws.url(name), body, 1, 1, lua, timeout_s=30)
        for round_ in range(plan.rounds):
            for name in rotated(REWRITE, round_):
                runs[size][name].append(
                    wrk.run(gws.url(name), body, 1, plan.rewrite_seconds, lua, timeout_s=30))
        print(f"  {size} bytes: " + ", ".join(
            f"{name} p50 {median_of(runs[size][name], 'p50_us'):.0f} us" for name in REWRITE),
            flush=True)
    return runs


def native_rewrite(skip):
    """criterion's figures for the rewrite and a serde_json round trip, outside any host."""
    if skip:
        return {"skipped": "--skip-native or --skip-rewrite"}
    import summary  # bench/rewrite/summary.py
    target = ROOT / "target" / "bench"
    subprocess.run(["cargo", "bench", "--manifest-path", str(BENCH / "rewrite" / "Cargo.toml"),
                    "--target-dir", str(target)], check=True, timeout=1200)
    return {"rows": summary.summarize(target)}


OURS = ("store_free", "per_request", "store_down", "background", "engine")


def floor_settings(name):
    """A bench/filters floor's configuration ({} for anything else)."""
    wasm = GATEWAYS[name][1]
    if not wasm or wasm["path"] != BENCH_WASM:
        return {}
    return json.loads(wasm["configuration"])


def upstream_length(gws, name):
    """The `content-length` the upstream received for one 1 KB request through gateway `name`
    (None: the body came chunked), from the upstream's framing probe; raises on a non-200."""
    conn = http.client.HTTPConnection("127.0.0.1", gws.ports[name], timeout=10)
    try:
        conn.request("POST", CHAT_PATH, body=bodies.chat_body(1024),
                     headers={"content-type": "application/json", FRAMING_PROBE_HEADER: "1"})
        answer = conn.getresponse()
        answer.read()
    finally:
        conn.close()
    if answer.status != 200:
        raise SystemExit(f"bench: the framing probe through {name} got {answer.status}")
    return answer.getheader(FRAMING_ANSWER_HEADER)


def check_floors(gws, names, cut_short):
    """({floor: what was seen}, problems) for the bench/filters floors among `names`: the routed
    ones sent requests to the providers strictly in turn (Envoy's own 50/50 split, with no
    header, would leave the two counts hundreds apart over a run); the body round trips sent the
    body upstream with its length when they hold the headers, chunked when they decide at them;
    each counter a floor increments moved once per request it routed, and each histogram it
    records got one sample per request."""
    seen, problems = {}, []
    for name in names:
        settings = floor_settings(name)
        if settings.get("mode") != "body_round_trip":
            continue
        clusters = gws.stats(name, prefix="cluster.")
        sent = [clusters.get(f"cluster.{provider}.upstream_rq_total", 0)
                for provider in ("minmax", "qianwen")]
        counters = gws.stats(name, prefix="wasmcustom.bench_floor.")
        length = upstream_length(gws, name)
        histograms = settled_histograms(gws, name, settings.get("histogram_records", 0),
                                        sum(sent), cut_short)
        seen[name] = {"sent": sent, "counters": counters, "histograms": histograms,
                      "upstream_content_length": length}
        if settings.get("route_to") and (min(sent) == 0 or abs(sent[0] - sent[1]) > 4):
            problems.append(f"{name} did not route in turn: {sent} requests per provider")
        if settings.get("at_headers") and length is not None:
            problems.append(f"{name} decides at the headers, yet the upstream got a "
                            f"content-length ({length}): the body did not stream")
        if not settings.get("at_headers") and length is None:
            problems.append(f"{name} holds the headers, yet the upstream got no content-length: "
                            "the framing probe is broken")
        wanted = settings.get("counter_increments", 0)
        if not once_per_request(counters, wanted, sum(sent), cut_short):
            problems.append(f"{name} should move {wanted} counters once per request "
                            f"({sum(sent)} routed): {counters}")
        wanted = settings.get("histogram_records", 0)
        if not once_per_request(histograms, wanted, sum(sent), cut_short):
            problems.append(f"{name} should give {wanted} histograms a sample per request "
                            f"({sum(sent)} routed): {histograms}")
    return seen, problems


def once_per_request(metrics, wanted, requests, cut_short):
    """Whether `metrics` ({name: count}) are `wanted` metrics that each moved once per request,
    within `cut_short`: the requests wrk can leave in flight as its runs stop (a sample taken at
    the response is then never taken)."""
    return len(metrics) == wanted and all(abs(count - requests) <= cut_short
                                          for count in metrics.values())


def cut_short_at_most(plan):
    """How many requests a variant's wrk runs can leave in flight as they stop: each loaded run
    (the warm-up, every round, the profile) up to its connections, each unloaded run one."""
    return LOADED_CONNECTIONS * (plan.rounds + 2) + plan.rounds


def settled_histograms(gws, name, wanted, requests, cut_short):
    """A floor's histograms ({name: samples}) once Envoy has flushed its last samples to the
    admin (it does every HISTOGRAM_FLUSH_S): polled until they count `requests` or for three
    flushes."""
    if not wanted:
        return gws.histograms(name)
    deadline = time.monotonic() + 3 * HISTOGRAM_FLUSH_S
    while True:
        histograms = gws.histograms(name)
        if (once_per_request(histograms, wanted, requests, cut_short)
                or time.monotonic() > deadline):
            return histograms
        time.sleep(0.5)


def checks(gws, names, cut_short):
    """What must be true of the run for its figures to mean anything; raises otherwise.
    Returns the filters' counters, and how many of the per-request variant's requests did not
    get the store's answer (a store slower than its 100 ms timeout under load is a fact to
    report, not a broken run, as long as nearly every request read it)."""
    stat = {name: gws.stats(name) for name in OURS}
    prefix = "wasmcustom.ai_lb."
    balanced = max(stat["per_request"].get(prefix + "requests.balanced", 0), 1)
    missed = (stat["per_request"].get(prefix + "fallback.store_error", 0)
              + stat["per_request"].get(prefix + "fallback.store_down", 0))
    problems = []
    if missed > balanced / 100:
        problems.append(f"per_request read the store for only {balanced - missed} of "
                        f"{balanced} requests")
    if not stat["store_down"].get(prefix + "fallback.store_down", 0):
        problems.append("store_down never counted the store down")
    if not stat["background"].get(prefix + "refresh.published", 0):
        problems.append("background never published loads")
    if not stat["engine"].get(prefix + "scrape.published", 0):
        problems.append("engine never published a scrape")
    for name in OURS:
        if not stat[name].get(prefix + "requests.balanced", 0):
            problems.append(f"{name} balanced no request")
        if stat[name].get(prefix + "rewrite.skipped", 0):
            problems.append(f"{name} skipped rewrites: its figures would not be rewrites")
    floors, floor_problems = check_floors(gws, names, cut_short)
    problems += floor_problems
    if problems:
        raise SystemExit("bench: the run is not valid:\n  " + "\n  ".join(problems))
    return {"counters": stat, "per_request_missed": missed, "per_request_balanced": balanced,
            "floors": floors}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="measurement rounds (default 6)")
    parser.add_argument("--seconds", type=int, default=5,
                        help="seconds per loaded wrk run (default 5; unloaded runs get half)")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s runs (a smoke run)")
    parser.add_argument("--skip-rewrite", action="store_true", help="no body-rewrite section")
    parser.add_argument("--skip-native", action="store_true", help="no criterion run")
    parser.add_argument("--skip-litellm", action="store_true", help="no LiteLLM peer")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: write results.md and chart.png from results.json")
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((BENCH / "results.json").read_text())
        results["rewrite"] = {int(size): runs for size, runs in results.get("rewrite", {}).items()}
        report.write(results, BENCH)
        return
    if args.rounds < 1 or args.seconds < 1:
        parser.error("--rounds and --seconds must be at least 1")
    plan = Plan(args)
    results = {"machine": report.machine(), "plan": vars(plan), "started": time.time(),
               "arguments": " ".join(sys.argv[1:])}
    results["host_calls"] = (HOST_CALL_TABLE.read_text() if HOST_CALL_TABLE.exists() else None)
    go_peer_wasm, results["go_peer"] = go_peer.status()
    overhead_names = [name for name in OVERHEAD if name != "go_peer" or go_peer_wasm]
    rewrite_names = [] if args.skip_rewrite else REWRITE
    counters_at_start = cpu_times()
    print("native rewrite (criterion)…", flush=True)
    results["native"] = native_rewrite(args.skip_native or args.skip_rewrite)
    names = sorted(set(overhead_names) | set(rewrite_names), key=list(GATEWAYS).index)
    with Gateways(names) as gws, tempfile.TemporaryDirectory(prefix="ai-lb-bench-") as tmp:
        results["idle_rss_kb"] = {name: rss_kb(gws.pid(name)) for name in names}
        targets = {name: gws.url(name) for name in overhead_names}
        pids = {name: gws.pid(name) for name in overhead_names}
        litellm = peer.start(gws.ports["upstream"], Path(tmp), args.skip_litellm)
        results["peer"] = litellm.description
        try:
            if litellm.url:
                targets["litellm"], pids["litellm"] = litellm.url, litellm.pid
            print("gateway overhead (wrk)…", flush=True)
            results["overhead"] = measure_overhead(
                targets, pids, plan, tmp, unpin=lambda: gws.unpin(pids.values()))
            results["profile"] = results["overhead"].pop("_profile")
        finally:
            litellm.stop()
        if rewrite_names:
            print("body rewrite through Envoy…", flush=True)
            results["rewrite"] = measure_rewrite(gws, plan, tmp)
        results["stats"] = checks(gws, overhead_names, cut_short_at_most(plan))
    results["sizes"] = report.module_sizes()
    results["steal_percent"] = steal_percent(counters_at_start, cpu_times())
    report.write(results, BENCH)
    print(f"wrote {BENCH / 'results.md'} and {BENCH / 'chart.png'}")


if __name__ == "__main__":
    main()
