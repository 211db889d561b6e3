"""Summarize the rewrite benchmark from criterion's output (Python 3.11 stdlib only).

Run the benchmark from the repo root first:
    cargo bench --manifest-path bench/rewrite/Cargo.toml --target-dir target/bench
then `python3 bench/rewrite/summary.py [TARGET_DIR]` prints a markdown table.
"""

import json
import sys
from pathlib import Path

IMPLS = ("filter_rewrite", "serde_json_roundtrip")
DEFAULT_TARGET_DIR = Path(__file__).resolve().parents[2] / "target" / "bench"


def summarize(target_dir: Path) -> list[dict]:
    """One row per benchmarked (size, impl), sorted by size then impl.

    The size comes from criterion's own record of the group's Throughput::Bytes rather than the
    group name, so renaming a group cannot silently mislabel a row.
    """
    rows = []
    for record in sorted(Path(target_dir, "criterion").glob("*/*/new/benchmark.json")):
        benchmark = json.loads(record.read_text())
        if benchmark["function_id"] not in IMPLS:
            continue
        size = benchmark["throughput"]["Bytes"]
        estimates = json.loads((record.parent / "estimates.json").read_text())
        median_ns = estimates["median"]["point_estimate"]  # per iteration, i.e. per body
        rows.append(
            {
                "size": size,
                "impl": benchmark["function_id"],
                "mb_per_s": size / median_ns * 1e3,  # bytes/ns * 1e9 / 1e6
                "median_ns": median_ns,
            }
        )
    return sorted(rows, key=lambda row: (row["size"], IMPLS.index(row["impl"])))


def markdown(rows: list[dict]) -> str:
    lines = ["| size (bytes) | impl | MB/s | median |", "| ---: | --- | ---: | ---: |"]
    for row in rows:
        median_us = row["median_ns"] / 1e3
        lines.append(
            f"| {row['size']} | {row['impl']} | {row['mb_per_s']:.1f} | {median_us:.2f} µs |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_TARGET_DIR
    rows = summarize(target)
    if not rows:
        sys.exit(f"no criterion results under {target}/criterion: run the benchmark first")
    print(markdown(rows))
