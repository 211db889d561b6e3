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
SIZE_GOAL = 400 * 1024
REWRITE_GOAL_MB_S = 300
LABELS = dict((name, text) for name, (text, _, _) in GATEWAYS.items())
LABELS["litellm"] = "LiteLLM proxy, simple-shuffle"


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


# ---- the figures the tables and the chart share ------------------------------------------------

def overhead_rows(overhead):
    base = overhead["a"]
    base_rps, base_p50 = med(base["loaded"], "rps"), med(base["unloaded"], "p50_us")
    rows = []
    for name, runs in overhead.items():
        rps, p50 = med(runs["loaded"], "rps"), med(runs["unloaded"], "p50_us")
        rows.append({
            "name": name, "label": LABELS[name], "rps": rps, "ratio": rps / base_rps,
            "rps_min": min(run["rps"] for run in runs["loaded"]),
            "rps_max": max(run["rps"] for run in runs["loaded"]),
            "p50_us": p50, "added_p50_us": p50 - base_p50,
            "p99_us": med(runs["unloaded"], "p99_us"), "loaded_p99_us": med(runs["loaded"], "p99_us"),
            "cpu_us": med(runs["loaded"], "cpu_us_per_request"),
            "errors": sum(run["errors"] for run in runs["loaded"] + runs["unloaded"]),
            "rss_peak_kb": runs["rss_peak_kb"], "rss_peak_mb": runs["rss_peak_kb"] / 1024,
        })
    return rows


def rewrite_rows(rewrite):
    rows = []
    for size, by_name in rewrite.items():
        p50 = {name: med(runs, "p50_us") for name, runs in by_name.items()}
        row = {"size": int(size), **{f"{name}_p50_us": value for name, value in p50.items()}}
        for name, key in (("d", "filter_mb_s"), ("serde", "serde_mb_s")):
            extra_us = p50[name] - p50["buffer"]
            # Below wrk's microsecond resolution the difference says nothing: no figure.
            row[key] = int(size) / extra_us if extra_us > 0 else None
        rows.append(row)
    return rows


def goals(rows, rewrite, sizes):
    by = {row["name"]: row for row in rows}
    one_mb = next((row for row in rewrite if row["size"] == 1024 * 1024), {})
    found = [
        ("(d) background refresh throughput", "≥ 0.90 × (a)", by["d"]["ratio"], by["d"]["ratio"] >= 0.9, "×"),
        ("(d) unloaded p50 added", "≤ 50 µs", by["d"]["added_p50_us"], by["d"]["added_p50_us"] <= 50, "µs"),
        ("(b) per-request beside its floor (e)", "≥ 0.90 × (e)", by["b"]["rps"] / by["e"]["rps"],
         by["b"]["rps"] >= 0.9 * by["e"]["rps"], "×"),
        ("(c) store down", "≥ 0.90 × (a)", by["c"]["ratio"], by["c"]["ratio"] >= 0.9, "×"),
    ]
    mb_s = one_mb.get("filter_mb_s")
    found.append(("rewrite inside Envoy, 1 MB", f"≥ {REWRITE_GOAL_MB_S} MB/s", mb_s,
                  mb_s is not None and mb_s >= REWRITE_GOAL_MB_S, "MB/s"))
    for path in MODULES:
        size = sizes.get(path.name)
        found.append((path.name, "≤ 400 KB", size / 1024 if size else None,
                      size is not None and size <= SIZE_GOAL, "KB"))
    return found


# ---- writing -----------------------------------------------------------------------------------

def write(results, directory):
    directory = Path(directory)
    (directory / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    rows = overhead_rows(results["overhead"])
    rewrite = rewrite_rows(results["rewrite"])
    import markdown  # bench/markdown.py
    import chart  # bench/chart.py
    (directory / "results.md").write_text(
        markdown.render(results, rows, rewrite, goals(rows, rewrite, results["sizes"])))
    chart.draw(directory / "chart.png", results, rows, rewrite)
