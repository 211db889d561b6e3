"""bench/chart.png: the run in four panels, for a person who would rather look than read."""
import matplotlib

matplotlib.use("Agg")  # no display: write the PNG only
import matplotlib.pyplot as plt  # noqa: E402

BASE, FILTER, FLOOR, PEER = "#7f7f7f", "#1f77b4", "#ff7f0e", "#d62728"


FLOORS = ("empty", "body_trip", "routed_trip", "routed_calls", "shared_like_ours",
          "counters_like_ours", "streamed_routed", "calls_like_ours", "webdis_call",
          "webdis_shared")


def _colour(name):
    if name == "plain":
        return BASE
    if name in FLOORS:
        return FLOOR
    return PEER if name in ("go_peer", "litellm") else FILTER


def _bars(axis, rows, key, title, label, spread=None):
    """Bars of `key`; `spread` = (min key, max key) draws the rounds' range as error bars."""
    names = [row["name"] for row in rows]
    values = [row[key] or 0 for row in rows]
    # The rounds' lowest and highest, so that noise is seen, not hidden in a median.
    errors = ([[row[key] - row[spread[0]] for row in rows],
               [row[spread[1]] - row[key] for row in rows]] if spread else None)
    bars = axis.bar(names, values, color=[_colour(row["name"]) for row in rows], yerr=errors,
                    capsize=3 if spread else 0)
    for bar, text in zip(bars, label):
        axis.annotate(text, (bar.get_x() + bar.get_width() / 2, max(bar.get_height(), 0)),
                      ha="center", va="bottom", fontsize=8)
    axis.set_title(title, fontsize=10)
    axis.tick_params(axis="x", labelrotation=45, labelsize=8)


def draw(path, results, rows, rewrite):
    figure, ((throughput, latency), (rewrite_axis, memory)) = plt.subplots(
        2, 2, figsize=(12, 8.5))
    # LiteLLM's thousands of µs would flatten every other bar: it is in the tables.
    gateways = [row for row in rows if row["name"] != "litellm"]
    _bars(throughput, gateways, "added_cpu_us",
          "Gateway CPU µs/request added to plain Envoy (median; bars: rounds' range)",
          [f"{row['added_cpu_us']:+.0f}" for row in gateways],
          spread=("added_cpu_min", "added_cpu_max"))
    throughput.axhline(0, color="black", linewidth=0.8)
    _bars(latency, rows, "p50_us", "p50 latency µs, 1 connection (lower is better)",
          [f"{row['p50_us']:.0f}" if row["p50_us"] is not None else "–" for row in rows])
    if any(row["name"] == "litellm" for row in rows):
        latency.set_yscale("log")
    if rewrite:
        _rewrite(rewrite_axis, results, rewrite)
    else:
        rewrite_axis.set_axis_off()
    _bars(memory, rows, "rss_peak_mb", "Peak resident memory under load, MB", [
        f"{row['rss_peak_mb']:.0f}" for row in rows])
    machine = results["machine"]
    figure.suptitle(f"ai-load-balancer, {machine['date']}, {machine['cores']} cores "
                    f"{machine['cpu']}; grey: plain Envoy, orange: floors, blue: ours, red: peers",
                    fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _rewrite(axis, results, rewrite):
    sizes = [row["size"] for row in rewrite]
    labels = [f"{size // 1024} KB" if size < 1024 * 1024 else f"{size // (1024 * 1024)} MB"
              for size in sizes]
    series = [("filter in Envoy", [row["filter_mb_s"] for row in rewrite], FILTER),
              ("serde_json in Envoy", [row["serde_mb_s"] for row in rewrite], FLOOR)]
    native = {(row["size"], row["impl"]): row["mb_per_s"]
              for row in results.get("native", {}).get("rows", [])}
    if native:
        series += [("filter native", [native.get((s, "filter_rewrite")) for s in sizes], "#aec7e8"),
                   ("serde_json native", [native.get((s, "serde_json_roundtrip")) for s in sizes],
                    "#ffbb78")]
    width = 0.8 / len(series)
    for index, (name, values, colour) in enumerate(series):
        xs = [x + index * width for x in range(len(sizes))]
        axis.bar(xs, [value or 0 for value in values], width, label=name, color=colour)
    axis.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(sizes))], labels)
    axis.set_yscale("log")
    axis.set_title("Body rewrite MB/s (log)", fontsize=10)
    axis.legend(fontsize=8)
