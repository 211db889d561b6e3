"""Turns one benchmark run into bench/results.json, bench/results.md and bench/chart.png."""
import datetime
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

from gateways import BENCH_WASM, GATEWAYS, ROOT

MODULES = [ROOT / "dist" / "ai-load-balancer-envoy.wasm", ROOT / "dist" / "ai-load-balancer.wasm"]
SIZE_GOAL = 512 * 1024  # tests/wasm_modules.rs
BASELINE = "plain"
LABELS = dict((name, text) for name, (text, _, _) in GATEWAYS.items())
LABELS["litellm"] = "peer: LiteLLM proxy, simple-shuffle"
# (variant, floor, what the variant adds): pairs of floors that differ in one kind of what ours
# does, so that ours' excess over the routed floor can be put down to kinds (section 2, and
# Envoy's share in the CPU profile).
ATTRIBUTION = (
    ("streamed_routed", "routed_trip", "deciding at the headers, the body streamed chunked"),
    ("shared_like_ours", "routed_calls", "ours' shared-data reads and CAS write"),
    ("counters_like_ours", "routed_calls", "ours' counter increments"),
    ("calls_like_ours", "streamed_routed", "ours' host calls of every kind"),
    ("store_free", "calls_like_ours", "ours' decision, beyond its calls and framing"),
)


def _first_line(argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    from gateways import gateway  # scripts/gateway.py, for the Envoy it runs
    return {
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
        "envoy": _first_line([gateway.envoy_binary(), "--version"]),
        "wrk": _first_line(["wrk", "--version"]),
        "commit": _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "date": datetime.date.today().isoformat(),
    }


def module_sizes():
    return {path.name: path.stat().st_size for path in MODULES + [BENCH_WASM] if path.exists()}


def med(runs, key):
    return statistics.median(run[key] for run in runs)


def spread(values):
    """median, min, max of a list of per-round figures."""
    return statistics.median(values), min(values), max(values)


# ---- the figures the tables and the chart share ------------------------------------------------

def overhead_rows(overhead):
    """Per variant: gateway CPU µs per request added to plain Envoy's in the same round (median,
    min, max over rounds), req/s × plain's in the same round, latency and memory.

    Differences are taken round by round, so that a slow minute of the machine, which lands on
    every variant of that round alike, cancels out. An added cost whose rounds reach zero or
    below, and a req/s ratio above 1.0 (a filter cannot make Envoy faster), are noise: they are
    flagged so, never reported as a result."""
    base = overhead[BASELINE]
    base_cpu = [run["cpu_us_per_request"] for run in base["loaded"]]
    base_rps = [run["rps"] for run in base["loaded"]]
    base_p50 = med(base["unloaded"], "p50_us") if base["unloaded"] else None
    rows = []
    for name, runs in overhead.items():
        cpu = [run["cpu_us_per_request"] for run in runs["loaded"]]
        rps = [run["rps"] for run in runs["loaded"]]
        added = spread([mine - plain for mine, plain in zip(cpu, base_cpu)])
        ratio = spread([mine / max(plain, 1) for mine, plain in zip(rps, base_rps)])
        p50 = med(runs["unloaded"], "p50_us") if runs["unloaded"] else None
        rows.append({
            "name": name, "label": LABELS[name], "baseline": name == BASELINE,
            "cpu_us": statistics.median(cpu), "rounds": len(cpu),
            "added_cpu_us": added[0], "added_cpu_min": added[1], "added_cpu_max": added[2],
            "added_noise": name != BASELINE and added[1] <= 0,
            "rps": statistics.median(rps), "ratio": ratio[0], "ratio_min": ratio[1],
            "ratio_max": ratio[2], "ratio_noise": name != BASELINE and ratio[0] > 1.0,
            "p50_us": p50, "added_p50_us": None if p50 is None else p50 - base_p50,
            "p99_us": med(runs["unloaded"], "p99_us") if runs["unloaded"] else None,
            "loaded_p99_us": med(runs["loaded"], "p99_us"),
            "errors": sum(run["errors"] for run in runs["loaded"] + runs["unloaded"]),
            "rss_peak_kb": runs["rss_peak_kb"], "rss_peak_mb": runs["rss_peak_kb"] / 1024,
        })
    return rows


def over_floor(overhead, variant, floor):
    """(median, min, max) over rounds of `variant`'s gateway CPU µs per request minus `floor`'s
    in the same round, or None when either was not measured."""
    if variant not in overhead or floor not in overhead:
        return None
    pairs = zip(overhead[variant]["loaded"], overhead[floor]["loaded"])
    return spread([mine["cpu_us_per_request"] - theirs["cpu_us_per_request"]
                   for mine, theirs in pairs])


def rewrite_rows(rewrite):
    rows = []
    for size, by_name in rewrite.items():
        p50 = {name: med(runs, "p50_us") for name, runs in by_name.items()}
        row = {"size": int(size), **{f"{name}_p50_us": value for name, value in p50.items()}}
        for name, key in (("background", "filter_mb_s"), ("serde", "serde_mb_s")):
            extra_us = p50[name] - p50["buffer"]
            # Below wrk's microsecond resolution the difference says nothing: no figure.
            row[key] = int(size) / extra_us if extra_us > 0 else None
        rows.append(row)
    return rows


def targets(overhead, sizes):
    """Issue 17's targets, as added CPU µs per request over a floor in the same run:
    (what, target, (median, min, max) or None, met or None)."""
    found = []
    for variant, floor, allowed in (("store_free", "body_trip", 15), ("background", "body_trip", 15),
                                    ("engine", "body_trip", 15), ("per_request", "webdis_call", 20)):
        figures = over_floor(overhead, variant, floor)
        found.append((f"`{variant}` over the floor `{floor}`",
                      f"≤ +{allowed} µs", figures,
                      None if figures is None else figures[0] <= allowed))
    # Not targets: what is left once Envoy's own price for choosing a provider (a header write
    # and the route re-match, with no decision in the VM), for deciding at the headers (the
    # body streamed) and for ours' host calls kind by kind is counted in the floor.
    for floor in ("routed_trip", "routed_calls", "streamed_routed", "calls_like_ours"):
        for variant in ("store_free", "background", "engine"):
            figures = over_floor(overhead, variant, floor)
            found.append((f"`{variant}` over the floor `{floor}`", "(context)", figures, None))
    # Floor over floor: what one kind of difference between ours and the routed floor costs.
    for variant, floor, _ in ATTRIBUTION:
        what = f"`{variant}` over the floor `{floor}`"
        if all(row[0] != what for row in found):  # not already a context row
            found.append((what, "(attribution)", over_floor(overhead, variant, floor), None))
    for path in MODULES:
        size = sizes.get(path.name)
        found.append((path.name, "≤ 512 KB", None if size is None else (size / 1024,) * 3,
                      size is not None and size <= SIZE_GOAL))
    return found


# ---- writing -----------------------------------------------------------------------------------

def write(results, directory):
    directory = Path(directory)
    (directory / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    rows = overhead_rows(results["overhead"])
    rewrite = rewrite_rows(results["rewrite"]) if results.get("rewrite") else []
    import markdown  # bench/markdown.py
    import chart  # bench/chart.py
    (directory / "results.md").write_text(markdown.render(
        results, rows, rewrite, targets(results["overhead"], results["sizes"])))
    chart.draw(directory / "chart.png", results, rows, rewrite)
