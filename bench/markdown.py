"""bench/results.md from one run's figures (see report.py)."""

COMMAND = "make bench"


def _num(value, digits=0):
    return "–" if value is None else f"{value:,.{digits}f}"


def _size(size):
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render(results, rows, rewrite, goals):
    machine, plan = results["machine"], results["plan"]
    parts = [
        "# Benchmarks: what the filter costs",
        f"Measured on {machine['date']} at commit `{machine['commit']}` by `{COMMAND}` "
        f"(bench/run.py; raw figures in results.json, picture in chart.png).\n\n"
        f"- Machine: {machine['cores']} cores, {machine['cpu']}, Linux {machine['kernel']}\n"
        f"- {machine['envoy']}\n- {machine['wrk']}\n"
        f"- Every process on this one machine, over loopback: wrk (1 thread), the gateway Envoy "
        f"(`--concurrency 1`, V8), one upstream Envoy answering a fixed chat completion after "
        f"reading the body, Redis and Webdis (1 thread). Every variant runs for the whole run; "
        f"{plan['rounds']} rounds visit them in a rotated order, {plan['seconds']} s per wrk run; "
        f"medians of the rounds. Under load the gateway under test owns one core (taskset) and wrk, "
        f"the upstream and the store share the other; the 1-connection runs come after, with "
        f"every process free to run anywhere. This is a virtual machine: the hypervisor took "
        f"{results.get('steal_percent', 0):.0f}% of its CPU time for others during the run "
        f"(steal, /proc/stat), so figures move between runs; ratios within one run hold better.",
        "## Goals",
        _table(["goal", "target", "measured", "met"], [
            [name, target, f"{_num(value, 2)} {unit}", "yes" if met else "**no**"]
            for name, target, value, met, unit in goals]),
        "## 1. Gateway overhead (1 KB chat body)",
        f"Throughput with {32} connections; latency with 1 connection (unloaded). "
        "Ratios are to (a), plain Envoy. CPU µs/request is the gateway process's own CPU time "
        "(user + system, from /proc) per request under load; it moves less than req/s with what "
        "else the machine is doing.",
        _noise(rows),
        _table(["variant", "req/s", "rounds' range", "× (a)", "CPU µs/request", "p50 µs", "p50 added µs",
                "p99 µs", "p99 µs loaded", "errors"], [
            [f"({row['name']}) {row['label']}" if len(row["name"]) == 1 else row["label"],
             _num(row["rps"]), f"{_num(row['rps_min'])}–{_num(row['rps_max'])}",
             _num(row["ratio"], 2), _num(row["cpu_us"], 1), _num(row["p50_us"]),
             _num(row["added_p50_us"]), _num(row["p99_us"]), _num(row["loaded_p99_us"]),
             row["errors"]] for row in rows]),
        _where_time_goes(rows),
        f"(b) got the store's answer for {results['stats']['b_balanced'] - results['stats']['b_store_missed']:,} "
        f"of its {results['stats']['b_balanced']:,} balanced requests; the others waited out the "
        "100 ms timeout or found the store known down, and chose by weight.",
        "## 2. Body rewrite",
        _native(results.get("native", {})),
        "Inside Envoy, one connection, p50 request time in µs. The filter is (d) (loads already "
        "published, so only the rewrite differs); serde is a filter that parses into "
        "`serde_json::Value`, sets `model` and serializes; buffer only holds the body like both "
        "and changes nothing. MB/s = body size ÷ (p50 − buffer-only p50): the cost of copying "
        "the body into the VM, scanning or parsing it, and writing it back.",
        _table(["body", "Envoy alone", "buffer only", "filter", "serde", "filter MB/s",
                "serde MB/s"], [
            [_size(row["size"]), _num(row["a_p50_us"]), _num(row["buffer_p50_us"]),
             _num(row["d_p50_us"]), _num(row["serde_p50_us"]), _num(row["filter_mb_s"]),
             _num(row["serde_mb_s"])] for row in rewrite]),
        "## 3. Size and memory",
        _table(["module", "bytes"], [[name, f"{size:,}"] for name, size in results["sizes"].items()]),
        "Gateway Envoy resident memory (VmRSS): idle after start, and the peak while wrk loads it.",
        _table(["gateway", "idle MB", "peak under load MB"], [
            [f"({row['name']}) {row['label']}" if len(row["name"]) == 1 else row["label"],
             _num(results["idle_rss_kb"].get(row["name"], 0) / 1024, 1)
             if row["name"] in results["idle_rss_kb"] else "–",
             _num(row["rss_peak_kb"] / 1024, 1)] for row in rows]),
        "## 4. The peer: LiteLLM's proxy",
        results["peer"],
    ]
    return "\n\n".join(parts) + "\n"


def _noise(rows):
    """How far apart one variant's rounds were: differences smaller than that mean nothing."""
    gateways = [row for row in rows if len(row["name"]) == 1]
    worst = max(gateways, key=lambda row: row["rps_max"] / max(row["rps_min"], 1))
    spread = worst["rps_max"] / max(worst["rps_min"], 1)
    verdict = ("differences between gateway variants smaller than that are not resolved by "
               "this run" if spread > 1.2 else "ratios within one run are resolved to about that")
    return (f"**Noise.** The widest spread between one variant's rounds was ({worst['name']}): "
            f"{spread:.2f}× between its slowest and fastest round; {verdict}.")


def _where_time_goes(rows):
    """The goals against the floors that bound them, in the gateway's CPU per request."""
    by = {row["name"]: row for row in rows}
    if not all(name in by for name in "abcdef"):
        return ""
    cpu = {name: by[name]["cpu_us"] for name in "abcdef"}
    return (
        "**Where the time goes.** An empty proxy-wasm filter (f) already runs at "
        f"{by['f']['ratio']:.2f}× of (a): Envoy creates a wasm context per request and calls "
        f"into the VM at each step, {cpu['f'] - cpu['a']:+.1f} µs of gateway CPU per request "
        f"here. Background refresh (d) costs {cpu['d'] - cpu['f']:+.1f} µs over (f): headers "
        "set, route re-matched, loads read from shared data, counters, and the body copied into "
        "the VM, rewritten and copied back. Per-request reads (b) cost "
        f"{cpu['b'] - cpu['e']:+.1f} µs over their floor (e), which pays the Webdis round trip "
        f"too; with the store down (c) costs {cpu['c'] - cpu['d']:+.1f} µs beside (d), since "
        "requests stop asking a store known down. On a 2-core machine the gateway shares the "
        "CPU with wrk, the upstream and the store, so req/s ratios move more than CPU µs do.")


def _native(native):
    if "rows" not in native:
        return f"Natively (criterion): not run ({native.get('skipped', 'no figures')})."
    by_size = {}
    for row in native["rows"]:
        by_size.setdefault(row["size"], {})[row["impl"]] = row["mb_per_s"]
    return "Natively (criterion, this machine, no host), MB/s:\n\n" + _table(
        ["body", "filter rewrite", "serde_json parse + serialize", "× serde"], [
            [_size(size), _num(impls.get("filter_rewrite")),
             _num(impls.get("serde_json_roundtrip")),
             _num(impls["filter_rewrite"] / impls["serde_json_roundtrip"], 1)
             if impls.get("serde_json_roundtrip") and impls.get("filter_rewrite") else "–"]
            for size, impls in sorted(by_size.items())])
