"""The processes a benchmark run measures, all on loopback: Redis, Webdis, one fast upstream
Envoy, and one gateway Envoy (`--concurrency 1`) per variant, started once and kept up for the
whole run so that every variant is measured in the same minutes, interleaved.

With two cores or more, the gateway under test (or the peer) owns the last core and everything
else (wrk, the upstream, Redis, Webdis) shares the others: what the gateway costs is then
measured on a core nothing else competes for.

Processes run through scripts/gateway.py's `Stack` (the same spawning, readiness waits and
clean-up as `make run` and the end-to-end tests).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "bench")]

import envoy_configs  # noqa: E402
import gateway  # noqa: E402
import go_peer  # noqa: E402
import ours_calls  # noqa: E402

FILTER_WASM = ROOT / "dist" / "ai-load-balancer-envoy.wasm"
BENCH_WASM = ROOT / "target" / "bench" / "wasm32-wasip1" / "release" / "ai_lb_bench_filters.wasm"
CHAT_PATH = "/masgod/v1/chat/completions"
LOADS = {"ai_metric:minimax_1": "30", "ai_metric:qwen_1": "10"}
# The Go peer's 5.5 MB module takes V8 over 10 s to compile on a busy core.
READY_S = 90
CPUS = os.cpu_count() or 1
GATEWAY_CPU = str(CPUS - 1) if CPUS > 1 else None
LOAD_CPUS = f"0-{CPUS - 2}" if CPUS > 1 else None


def pinned(argv, cpus):
    """`argv` run on `cpus` (taskset execs it, so the pid stays the command's)."""
    return ["taskset", "-c", cpus, *argv] if cpus else list(argv)


def pin(pid, cpus):
    """Moves every thread of a running process onto `cpus`."""
    if cpus:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True,
                       capture_output=True, timeout=10)

# The seed's two providers, as envoy/envoy.yaml configures them.
PROVIDERS = [{"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
             {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}]
WEBDIS_STORE = {"cluster": "webdis", "protocol": "webdis", "timeout_ms": 100}


def filter_wasm(allow_stop=True, **fields):
    """The filter with the seed's providers and `fields` beside them; no fields: the seed's
    configuration (per-request reads through Webdis)."""
    config = {"providers": PROVIDERS, **(fields or {"redis": WEBDIS_STORE})}
    return {"path": FILTER_WASM, "vm_id": "ai_load_balancer",
            "allow_on_headers_stop_iteration": allow_stop, "configuration": json.dumps(config)}


def engine_metrics_wasm():
    """load_source engine_metrics: each provider's engine `/metrics` is a vLLM page the upstream
    Envoy serves (envoy_configs.METRICS_PAGES), scraped every second by the lease holder."""
    providers = [dict(provider, metrics={"cluster": provider["name"],
                                         "path": f"/metrics/{provider['name']}"})
                 for provider in PROVIDERS]
    return filter_wasm(providers=providers, load_source="engine_metrics",
                       engine_metrics={"interval_ms": 1000, "timeout_ms": 500})


def bench_wasm(mode, allow_stop=True, **fields):
    """A bench/filters mode; `fields` are that mode's settings (see bench/filters/src/lib.rs)."""
    return {"path": BENCH_WASM, "vm_id": f"bench_{mode}",
            "allow_on_headers_stop_iteration": allow_stop,
            "configuration": json.dumps({"mode": mode, **fields})}


def histogram_samples(admin_port, prefix="bench_floor_histogram_"):
    """{histogram: samples} of the histograms whose Prometheus name starts with `prefix`, from
    the admin's `/stats/prometheus` (`<name>_count`; a `wasmcustom.bench_floor.histogram_0`
    is `bench_floor_histogram_0` there), as of Envoy's last flush (HISTOGRAM_FLUSH_S)."""
    status, body = gateway.http_get(f"http://127.0.0.1:{admin_port}/stats/prometheus", timeout=5)
    if status != 200:
        raise gateway.StackError(f"admin /stats/prometheus: {status} {body[:200]!r}")
    samples = {}
    for line in body.decode().splitlines():
        name, _, value = line.rpartition(" ")
        name = name.partition("{")[0]  # labels: `{}` when the histogram has none
        if name.startswith(prefix) and name.endswith("_count"):
            samples[name[:-len("_count")]] = int(float(value))
    return samples


def start_envoy(procs, name, config_text, admin_port, cpus=None):
    """Envoy (`--concurrency 1`) on `config_text`, started by `procs` (a gateway.Stack), once
    its admin answers /ready."""
    config = procs.dir / f"{name}.yaml"
    config.write_text(config_text)
    procs.spawn(name, pinned([
        gateway.envoy_binary(), "-c", str(config), "--concurrency", "1",
        "--use-dynamic-base-id", "-l", "error"], cpus))
    procs.wait_ready(
        name, lambda: gateway.http_get(f"http://127.0.0.1:{admin_port}/ready") == (200, b"LIVE\n"),
        READY_S)


ROUTE_TO = [p["name"] for p in PROVIDERS]
# The floors that make store_free's host calls, kind by kind, from its host-call budget.
LIKE_OURS, OURS_DIFFER = ours_calls.like_ours(ours_calls.calls_per_request())
CALL_WORDS = {"header_reads": "request-header reads", "header_writes": "request-header writes",
              "shared_reads": "shared-data reads", "shared_writes": "shared-data CAS writes",
              "counter_increments": "counter increments", "clock_reads": "clock reads",
              "response_reads": "response-body reads",
              "response_header_reads": "response-header reads",
              "histogram_records": "histogram samples"}
# Envoy merges histogram samples into what its admin shows every 5 s (the stats flush interval).
HISTOGRAM_FLUSH_S = 5


def calls_in_words(fields):
    text = ", ".join(f"{CALL_WORDS[field]} ×{count}" for field, count in fields.items() if count)
    return text or "no more calls"


def _like_ours_label():
    label = (f"floor: `streamed_routed` + {calls_in_words(LIKE_OURS)} (store_free's host calls "
             "of every kind, section 3)")
    if OURS_DIFFER:  # ours makes calls no field makes: say so rather than claim them
        label += " except ours' " + ", ".join(f"{name} {count:+}"
                                              for name, count in OURS_DIFFER.items())
    return label


# name -> (what it is, the wasm filter or None, whether its store is a port nobody listens on).
# Ours and the floors run with allow_on_headers_stop_iteration (the shipped envoy.yaml's).
GATEWAYS = {
    "plain": ("Envoy, no filter", None, False),
    "empty": ("floor: an empty proxy-wasm filter (Rust SDK)", bench_wasm("noop"), False),
    "body_trip": ("floor: + headers held, body copied into the VM and back",
                  bench_wasm("body_round_trip"), False),
    "routed_trip": ("floor: + `x-selected-provider` set in turn and the route re-matched",
                    bench_wasm("body_round_trip", route_to=ROUTE_TO), False),
    "routed_calls": ("floor: the routed floor + 16 header reads (20 host calls in all)",
                     bench_wasm("body_round_trip", route_to=ROUTE_TO, header_reads=16), False),
    "shared_like_ours": (
        f"floor: `routed_calls` + {calls_in_words(ours_calls.shared_only(LIKE_OURS))} (ours')",
        bench_wasm("body_round_trip", route_to=ROUTE_TO, header_reads=16,
                   **ours_calls.shared_only(LIKE_OURS)), False),
    "counters_like_ours": (
        f"floor: `routed_calls` + {calls_in_words(ours_calls.counters_only(LIKE_OURS))} (ours')",
        bench_wasm("body_round_trip", route_to=ROUTE_TO, header_reads=16,
                   **ours_calls.counters_only(LIKE_OURS)), False),
    "streamed_routed": ("floor: the routed floor deciding at the headers as ours does: "
                        "`content-length` removed, headers continued, each body chunk copied "
                        "as it passes (sent upstream chunked)",
                        bench_wasm("body_round_trip", route_to=ROUTE_TO, at_headers=True),
                        False),
    "calls_like_ours": (_like_ours_label(),
                        bench_wasm("body_round_trip", route_to=ROUTE_TO, at_headers=True,
                                   **LIKE_OURS), False),
    "webdis_call": ("floor: one Webdis call + header", bench_wasm("store_round_trip"), False),
    "webdis_shared": ("floor: one Webdis call + one shared-data read + header",
                      bench_wasm("store_round_trip", shared_data_key="bench.loads"), False),
    "store_free": ("ours: `round_robin`, no store",
                   filter_wasm(strategy="round_robin"), False),
    "per_request": ("ours: per-request Webdis read (the default)", filter_wasm(), False),
    "store_down": ("ours: per-request, store down", filter_wasm(), True),
    "background": ("ours: `refresh: background`",
                   filter_wasm(redis=dict(WEBDIS_STORE, refresh="background")), False),
    "engine": ("ours: engine metrics (background scrape)", engine_metrics_wasm(), False),
    "go_peer": ("Go peer: Higress `gpustack-set-header-pre-route`", go_peer.wasm_config(), False),
    "serde": ("serde_json parse + serialize filter", bench_wasm("serde_rewrite"), False),
    "buffer": ("buffer the body, no parse", bench_wasm("buffer_only"), False),
}


class Gateways:
    """Starts everything in `start()`; `stop()` (or leaving the `with`) kills all of it."""

    def __init__(self, names):
        self.names = list(names)
        self.procs = gateway.Stack()
        self.ports = {}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        for wasm in (FILTER_WASM, BENCH_WASM):
            if not wasm.exists():
                raise gateway.StackError(f"{wasm} is missing: run `make bench`, which builds it")
        if "go_peer" in self.names and go_peer.status()[0] is None:
            raise gateway.StackError("the Go peer is not prepared: leave it out of the run")
        procs = self.procs
        procs.open_dir("ai-lb-bench-")
        try:
            procs.ports = self.ports
            self.ports.update(gateway.free_ports(
                ("redis", "webdis", "dead_store", "upstream", "upstream_admin")))
            procs.start_redis(wait_for_webdis=False)
            procs.start_webdis()
            for name in ("redis", "webdis"):
                pin(procs.procs[name].pid, LOAD_CPUS)
            for key, value in LOADS.items():
                procs.redis_cli("SET", key, value)
            self._envoy("upstream", envoy_configs.upstream_config(
                self.ports["upstream_admin"], self.ports["upstream"]))
            for name in self.names:
                _, wasm, store_down = GATEWAYS[name]
                picked = gateway.free_ports(("admin", "listen"), taken=set(self.ports.values()))
                admin, listen = picked["admin"], picked["listen"]
                self.ports[f"{name}_admin"], self.ports[name] = admin, listen
                webdis = self.ports["dead_store" if store_down else "webdis"]
                self._envoy(name, envoy_configs.gateway_config(
                    admin, listen, self.ports["upstream"], webdis, wasm))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        self.procs.stop()

    def unpin(self, extra_pids=()):
        """Lets every process of the run (and `extra_pids`) use every core from now on."""
        everything = f"0-{CPUS - 1}"
        for pid in {proc.pid for proc in self.procs.procs.values()} | set(extra_pids):
            pin(pid, everything)

    def url(self, name):
        return f"http://127.0.0.1:{self.ports[name]}{CHAT_PATH}"

    def pid(self, name):
        return self.procs.procs[name].pid

    def stats(self, name, prefix="wasmcustom.ai_lb"):
        """{counter: value} from a gateway's admin `/stats`, for counters under `prefix`."""
        return gateway.admin_counters(f"http://127.0.0.1:{self.ports[f'{name}_admin']}", prefix)

    def histograms(self, name):
        """{histogram: samples} of a gateway's bench floor histograms (`histogram_samples`)."""
        return histogram_samples(self.ports[f"{name}_admin"])

    def _envoy(self, name, config_text):
        cpus = LOAD_CPUS if name == "upstream" else GATEWAY_CPU
        start_envoy(self.procs, name, config_text, self.ports[f"{name}_admin"], cpus)
