"""bench/results.md from one run's figures (see report.py)."""

COMMAND = "make bench"
NOISE = "within noise"
HOST_CALLS_BEGIN = "<!-- BEGIN host-call table: tests/host_call_budget.rs -->"
HOST_CALLS_END = "<!-- END host-call table -->"


def _num(value, digits=0):
    return "–" if value is None else f"{value:,.{digits}f}"


def _signed(value):
    return "–" if value is None else f"{value:+,.0f}"


def _size(size):
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _added(row):
    """The headline cell: added µs, flagged when its rounds reach zero or below."""
    if row["baseline"]:
        return f"{_num(row['cpu_us'])} of its own"
    text = _signed(row["added_cpu_us"])
    return f"{text} ({NOISE})" if row["added_noise"] else f"**{text}**"


def _ratio(row):
    if row["baseline"]:
        return "1.00"
    text = f"{row['ratio']:.2f} ({row['ratio_min']:.2f}–{row['ratio_max']:.2f})"
    # A filter cannot make Envoy faster: above 1.0 is the machine, not the filter.
    return f"{text}, {NOISE}" if row["ratio_noise"] else text


def render(results, rows, rewrite, targets):
    machine, plan = results["machine"], results["plan"]
    parts = [
        "# Benchmarks: what the filter costs",
        f"Measured on {machine['date']} at commit `{machine['commit']}` by `{COMMAND}` "
        f"(bench/run.py{' ' + results['arguments'] if results.get('arguments') else ''}; raw "
        f"figures in results.json, picture in chart.png).\n\n"
        f"- Machine: {machine['cores']} cores, {machine['cpu']}, Linux {machine['kernel']}\n"
        f"- {machine['envoy']}\n- {machine['wrk']}\n"
        f"- Every process on this one machine, over loopback: wrk (1 thread, 32 connections), "
        f"one gateway Envoy per variant (`--concurrency 1`, V8), one upstream Envoy answering a "
        f"fixed chat completion after reading the body, Redis and Webdis. Under load the gateway "
        f"under test owns the last core (taskset) and everything else shares the others. Every "
        f"variant runs for the whole run; {plan['rounds']} rounds visit them in a rotated order, "
        f"{plan['seconds']} s of wrk each. 1 KB chat bodies; ours and the floors with "
        f"`allow_on_headers_stop_iteration: true`. The hypervisor took "
        f"{results.get('steal_percent', 0):.0f}% of the machine's CPU time for others during "
        f"the run (steal, /proc/stat).",
        "## 1. Gateway CPU per request, added to plain Envoy",
        "The headline: the gateway process's own CPU time (user + system, /proc) per request "
        "under load, minus plain Envoy's in the same round; the median over rounds, then the "
        "rounds' lowest and highest difference. A difference whose rounds reach zero is marked "
        f"*{NOISE}*, and so is a req/s ratio above 1.0 (a filter cannot make Envoy faster: "
        "such a figure measures the machine). req/s × plain is the median of the per-round "
        "ratios (range in brackets); p50 is unloaded, 1 connection.",
        _table(["variant", "added CPU µs/request", "rounds' range", "req/s × plain",
                "req/s", "p50 µs (added)", "p99 µs loaded", "errors"], [
            [f"`{row['name']}`: {row['label']}", _added(row),
             "–" if row["baseline"] else
             f"{_signed(row['added_cpu_min'])} to {_signed(row['added_cpu_max'])}",
             _ratio(row), _num(row["rps"]),
             f"{_num(row['p50_us'])} ({_signed(row['added_p50_us'])})"
             if row["p50_us"] is not None else "–",
             _num(row["loaded_p99_us"]), row["errors"]] for row in rows]),
        _checks(results.get("stats", {})),
        "## 2. Targets (issue 17), in the same run",
        "Added CPU µs per request over a floor, round by round: median (rounds' range). "
        "Context rows measure ours over richer floors; attribution rows measure a floor over "
        "one that differs from it in one kind of what ours does (deciding at the headers, "
        "shared data, counters, all of ours' calls), so that ours' excess can be put down to "
        "kinds.",
        _table(["variant", "target", "measured", "met"], [
            [name, target,
             "not measured" if figures is None else
             f"{_signed(figures[0])} ({_signed(figures[1])} to {_signed(figures[2])})"
             if "KB" not in target else f"{figures[0]:,.0f} KB",
             "–" if met is None else "yes" if met else "**no**"]
            for name, target, figures, met in targets]),
        _profile(results.get("profile"), results["overhead"]),
        "## 3. Host calls per request",
        HOST_CALLS_BEGIN + "\n" + (results.get("host_calls") or
                                   "Not counted in this run: `make bench` writes it from "
                                   "`cargo test --test host_call_budget`.\n") + HOST_CALLS_END,
        "## 4. Body rewrite",
        _rewrite(results, rewrite),
        "## 5. Size and memory",
        _table(["module", "bytes"], [[name, f"{size:,}"] for name, size in results["sizes"].items()]),
        "Gateway resident memory (VmRSS): idle after start, and the peak while wrk loads it.",
        _table(["gateway", "idle MB", "peak under load MB"], [
            [row["label"],
             _num(results["idle_rss_kb"][row["name"]] / 1024, 1)
             if row["name"] in results["idle_rss_kb"] else "–",
             _num(row["rss_peak_kb"] / 1024, 1)] for row in rows]),
        "## 6. Peers",
        f"**Go peer.** {results.get('go_peer', 'not part of this run')}",
        f"**LiteLLM.** {results['peer']}",
    ]
    return "\n\n".join(parts) + "\n"


def _profile(profile, overhead):
    """Where each profiled gateway's CPU went (bench/cpu_profile.py), µs per request."""
    head = ("**Where the CPU goes.** One more loaded run per variant under `perf record -e "
            "cpu-clock` (one run each, not rounds; perf's sampling adds a little to every "
            "figure), split by binary: the wasm filter's code as V8 compiled it (`[JIT]`), "
            "Envoy (stripped, so not by function), the kernel, libc. A filter controls the wasm "
            "share directly; what it adds to Envoy's share comes from its host calls (section 3) "
            "and what Envoy does for them.")
    if not profile:
        return head + "\n\nNot profiled in this run."
    if "unavailable" in profile:
        return head + f"\n\nNot profiled in this run: {profile['unavailable']}."
    groups = list(next(iter(profile.values())))
    rows = [[f"`{name}`", *(_num(by_group[group], 1) for group in groups),
             _num(sum(by_group.values()), 1)]
            for name, by_group in profile.items() if name in overhead]
    return (head + "\n\n" + _table(["variant", *(f"{g} µs" for g in groups), "total µs"], rows)
            + _attribution(profile))


def _attribution(profile):
    """One sentence: the profile's differences between floors that differ in one kind of what
    ours does (report.ATTRIBUTION), in Envoy's share and the wasm share."""
    from report import ATTRIBUTION
    envoy, wasm = "Envoy", "wasm (V8 JIT)"
    parts = [f"`{variant}` over `{floor}` ({what}): Envoy "
             f"{_signed1(profile[variant].get(envoy, 0) - profile[floor].get(envoy, 0))}, wasm "
             f"{_signed1(profile[variant].get(wasm, 0) - profile[floor].get(wasm, 0))}"
             for variant, floor, what in ATTRIBUTION if variant in profile and floor in profile]
    if not parts:
        return ""
    return ("\n\nBy kind, µs per request in this profile (one run each, so differences of a "
            "few µs are within its noise): " + "; ".join(parts) + ".")


def _signed1(value):
    return f"{value:+.1f}"


def _checks(stats):
    if "per_request_balanced" not in stats:
        return ""
    return (f"The per-request variant got the store's answer for "
            f"{stats['per_request_balanced'] - stats['per_request_missed']:,} of its "
            f"{stats['per_request_balanced']:,} balanced requests (the others waited out the "
            "100 ms timeout and chose by weight); bench/run.py refuses a run where the store "
            "down variant never counted the store down, background refresh or the scrape never "
            "published, the rewrite was skipped, a routed floor did not route in turn, a floor "
            "deciding at the headers did not send the body upstream chunked (the upstream's "
            "framing probe) or a floor's counters did not move once per request.")


def _rewrite(results, rewrite):
    if not rewrite:
        return "Not measured in this run (`--skip-rewrite`)."
    return "\n\n".join([
        _native(results.get("native", {})),
        "Inside Envoy, one connection, p50 request time in µs. The filter is background "
        "refresh (loads already published, so only the rewrite differs); serde is a filter "
        "that parses into `serde_json::Value`, sets `model` and serializes; buffer only holds "
        "the body like both and changes nothing. MB/s = body size ÷ (p50 − buffer-only p50).",
        _table(["body", "Envoy alone", "buffer only", "filter", "serde", "filter MB/s",
                "serde MB/s"], [
            [_size(row["size"]), _num(row["plain_p50_us"]), _num(row["buffer_p50_us"]),
             _num(row["background_p50_us"]), _num(row["serde_p50_us"]),
             _num(row["filter_mb_s"]), _num(row["serde_mb_s"])] for row in rewrite])])


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
