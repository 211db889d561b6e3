#!/usr/bin/env python3
"""Checks the benchmark's Envoy configurations and comparison filters in real Envoy.

    .venv/bin/python bench/filters/check.py

Needs `make setup`, `make build` (dist/ai-load-balancer-envoy.wasm) and the bench module:
    cargo build --release --target wasm32-wasip1 --manifest-path bench/filters/Cargo.toml \
        --target-dir target/bench

1. every configuration bench/envoy_configs.py renders passes `envoy --mode validate`;
2. the upstream Envoy answers a 10 MB POST with 200 on a kept-alive connection;
3. the bare gateway (no filter) forwards to it;
4. each bench mode, under both allow_on_headers_stop_iteration settings, does what it claims,
   seen from a recording upstream (scripts/mock_provider.py), Redis's own command counts and
   the gateway's per-cluster stats and its floor metrics (counters, histograms); the floor
   making ours' calls leaves the upstream Envoy's answer unchanged; the real filter runs
   through the same renderer;
5. a bad configuration is refused with a log line naming the field.
Prints one line per check; exits 1 on the first failure (with the Envoy log tail).
"""
import hashlib
import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "scripts")]

import bodies  # noqa: E402
import envoy_configs  # noqa: E402
import gateway  # noqa: E402
import mock_provider  # noqa: E402
from gateway import envoy_binary, free_ports, http_get  # noqa: E402
from gateways import BENCH_WASM, FILTER_WASM as REAL_WASM  # noqa: E402
from gateways import GATEWAYS, HISTOGRAM_FLUSH_S, bench_wasm, filter_wasm  # noqa: E402
from gateways import histogram_samples, start_envoy  # noqa: E402

STORE_PATH = "/MGET/ai_metric:minimax_1/ai_metric:qwen_1.json"


class CheckFailed(Exception):
    pass


def ok(what):
    print(f"ok   {what}", flush=True)


def expect(condition, what, detail=""):
    if not condition:
        raise CheckFailed(f"{what}: {detail}")
    ok(what)


def validate(workdir, name, text):
    path = workdir / f"validate-{name}.yaml"
    path.write_text(text)
    done = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path),
                           "--use-dynamic-base-id", "-l", "error"],
                          capture_output=True, text=True, timeout=60)
    expect(done.returncode == 0, f"validate {name}", done.stdout[-2000:] + done.stderr[-2000:])


def post(port, body, path="/masgod/v1/chat/completions", method="POST", connection=None):
    """(status, parsed JSON answer or raw bytes, response headers) over `connection` if given."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    answer = conn.getresponse()
    data = answer.read()
    try:
        data = json.loads(data)
    except ValueError:
        pass
    if connection is None:
        conn.close()
    return answer.status, data, dict(answer.getheaders())


def framing_probe(port, chunked):
    """The upstream's framing probe (envoy_configs.FRAMING_PROBE_HEADER) for a 1 KB body sent
    with its length or chunked: the content-length it received, or None."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = b"x" * 1024
    conn.putrequest("POST", "/v1/chat/completions")
    conn.putheader(envoy_configs.FRAMING_PROBE_HEADER, "1")
    conn.putheader(*(("transfer-encoding", "chunked") if chunked else ("content-length", "1024")))
    conn.endheaders()
    conn.send(b"400\r\n" + body + b"\r\n0\r\n\r\n" if chunked else body)
    answer = conn.getresponse()
    answer.read()
    conn.close()
    expect(answer.status == 200, f"upstream: framing probe -> {answer.status}")
    return answer.getheader(envoy_configs.FRAMING_ANSWER_HEADER)


def bench_counters(admin_port):
    """{name: value} of the counters a bench floor increments."""
    return gateway.admin_counters(f"http://127.0.0.1:{admin_port}", "wasmcustom.bench_floor.")


def mget_calls(redis_port):
    """How many MGETs Redis has run (INFO commandstats): what reached it through Webdis."""
    out = subprocess.run(["redis-cli", "-p", str(redis_port), "INFO", "commandstats"],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    for line in out.splitlines():
        if line.startswith("cmdstat_mget:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def routed(admin_port):
    """{cluster: upstream requests} for the two provider clusters, from Envoy's stats."""
    text = http_get(f"http://127.0.0.1:{admin_port}/stats?filter=upstream_rq_total$")[1].decode()
    counts = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        for cluster in ("minmax", "qianwen"):
            if name == f"cluster.{cluster}.upstream_rq_total":
                counts[cluster] = int(value)
    return counts


def check_response_side(start_gateway, ports, body, requests=3):
    """`calls_like_ours` in front of the upstream Envoy, whose answer is always CHAT_COMPLETION:
    the response's calls leave it unchanged, and each of its histograms gets a sample per
    request (seen once Envoy has flushed them to the admin)."""
    start_gateway(GATEWAYS["calls_like_ours"][1], ports["up_listen"])
    wanted = json.loads(GATEWAYS["calls_like_ours"][1]["configuration"])["histogram_records"]
    expected = envoy_configs.CHAT_COMPLETION.encode()
    for attempt in range(1, requests + 1):
        conn = http.client.HTTPConnection("127.0.0.1", ports["gw_listen"], timeout=30)
        conn.request("POST", "/masgod/v1/chat/completions", body=body,
                     headers={"content-type": "application/json"})
        answer = conn.getresponse()
        data = answer.read()
        conn.close()
        expect(answer.status == 200 and data == expected
               and answer.getheader("content-type") == "application/json",
               f"calls_like_ours: response #{attempt} passed unchanged (the upstream's "
               f"{len(expected)} B, content-type application/json)",
               f"{answer.status} {answer.getheaders()} {data[:300]!r}")
    deadline = time.monotonic() + 3 * HISTOGRAM_FLUSH_S
    while True:
        samples = histogram_samples(ports["gw_admin"])
        counted = samples == {f"bench_floor_histogram_{n}": requests for n in range(wanted)}
        if counted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    expect(counted, f"calls_like_ours: its {wanted} histograms got one sample per request "
           f"({requests})", str(samples))


def redis_cli(redis_port, *args):
    subprocess.run(["redis-cli", "-p", str(redis_port), *args], capture_output=True,
                   timeout=10, check=True)


def main():
    for path, how in ((BENCH_WASM, "cargo build … bench/filters"), (REAL_WASM, "make build")):
        if not path.exists():
            sys.exit(f"{path} is missing: {how}")
    procs = gateway.Stack()  # the same process handling as `make run` and the tests
    workdir = procs.open_dir("ai-lb-bench-check-")
    recorder = mock_provider.start_in_thread("minmax")
    ports = procs.ports = free_ports(
        ("redis", "webdis", "up_admin", "up_listen", "gw_admin", "gw_listen"),
        taken={recorder.server_address[1]})
    recorder_port = recorder.server_address[1]
    current = None
    try:
        # 1. validation: every shape the harness renders, with real modules on disk
        validate(workdir, "upstream", envoy_configs.upstream_config(1, 2))
        validate(workdir, "gateway-bare", envoy_configs.gateway_config(1, 2, 3, 4, None))
        for allow in (False, True):
            validate(workdir, f"gateway-real-allow-{allow}",
                     envoy_configs.gateway_config(1, 2, 3, 4, filter_wasm(allow_stop=allow)))
            for mode in ("store_round_trip", "serde_rewrite", "buffer_only", "body_round_trip"):
                validate(workdir, f"gateway-{mode}-allow-{allow}",
                         envoy_configs.gateway_config(1, 2, 3, 4, bench_wasm(mode, allow)))
        for name in ("store_free", "background", "engine", "webdis_shared", "streamed_routed",
                     "calls_like_ours", "shared_like_ours", "counters_like_ours"):
            validate(workdir, f"gateway-{name}", envoy_configs.gateway_config(
                1, 2, 3, 4, GATEWAYS[name][1]))

        procs.start_redis(wait_for_webdis=False)
        procs.start_webdis()

        # 2. the upstream Envoy: big bodies, kept-alive connections
        start_envoy(procs, "upstream",
                    envoy_configs.upstream_config(ports["up_admin"], ports["up_listen"]),
                    ports["up_admin"])
        current = "upstream"
        conn = http.client.HTTPConnection("127.0.0.1", ports["up_listen"], timeout=30)
        big = b"x" * 10_000_000
        for attempt in (1, 2):
            status, data, headers = post(ports["up_listen"], big, connection=conn)
            expect(status == 200 and data.get("object") == "chat.completion"
                   and headers.get("connection") != "close",
                   f"upstream: 10 MB POST #{attempt} -> 200, chat completion, connection kept",
                   f"{status} {headers} {str(data)[:200]}")
        conn.close()
        cx = http_get(f"http://127.0.0.1:{ports['up_admin']}/stats?filter=downstream_cx_total$")[1]
        expect(b"http.upstream.downstream_cx_total: 1" in cx, "upstream: both on one connection",
               cx.decode())
        for chunked in (False, True):
            length = framing_probe(ports["up_listen"], chunked)
            expect(length == (None if chunked else "1024"),
                   f"upstream: the framing probe reports content-length {length} for a "
                   f"{'chunked' if chunked else 'sized'} 1 KB body")

        def start_gateway(wasm, upstream_port):
            nonlocal current
            procs.kill("gateway")
            start_envoy(procs, "gateway", envoy_configs.gateway_config(
                ports["gw_admin"], ports["gw_listen"], upstream_port, ports["webdis"], wasm),
                ports["gw_admin"])
            current = "gateway"

        # 3. the bare gateway in front of the upstream Envoy (variant a)
        start_gateway(None, ports["up_listen"])
        status, data, _ = post(ports["gw_listen"], bodies.chat_body(1024))
        expect(status == 200 and data.get("model") == "bench-upstream",
               "bare gateway: 1 KB POST -> upstream Envoy's 200", f"{status} {data}")
        status, data, _ = post(ports["gw_listen"], big)
        expect(status == 200, "bare gateway: 10 MB POST -> 200", f"{status} {str(data)[:200]}")

        # 4. the modes, seen by the recording upstream; both header-pause settings
        body = bodies.chat_body(1024)
        for allow in (False, True):
            tag = f"allow_on_headers_stop_iteration={str(allow).lower()}"

            start_gateway(bench_wasm("store_round_trip", allow, cluster="webdis", path=STORE_PATH,
                               timeout_ms=100), recorder_port)
            before = mget_calls(ports["redis"])
            status, data, _ = post(ports["gw_listen"], body)
            got = data["received"] if status == 200 else {}
            expect(mget_calls(ports["redis"]) == before + 1
                   and got.get("headers", {}).get("x-selected-provider") == "minmax"
                   and got.get("length") == len(body) and data.get("model") == "auto",
                   f"store_round_trip ({tag}): one MGET reached Redis, upstream got "
                   "x-selected-provider: minmax and the body unchanged", f"{status} {data}")
            for _ in range(10):
                post(ports["gw_listen"], body)
            counts = routed(ports["gw_admin"])
            expect(counts == {"minmax": 11, "qianwen": 0},
                   f"store_round_trip ({tag}): 11 of 11 requests routed to cluster minmax "
                   "(the header set in the store callback decides the route)", str(counts))
            before = mget_calls(ports["redis"])
            status, data, _ = post(ports["gw_listen"], None, method="GET")
            expect(status == 200 and mget_calls(ports["redis"]) == before,
                   f"store_round_trip ({tag}): a request without body makes no call",
                   f"{status} {data}")
            procs.stop_webdis()  # an unreachable store still ends the wait the same way
            status, data, _ = post(ports["gw_listen"], body)
            expect(status == 200 and data["received"]["headers"]["x-selected-provider"] == "minmax",
                   f"store_round_trip ({tag}): Webdis down -> still minmax", f"{status} {data}")
            procs.start_webdis()

            start_gateway(bench_wasm("serde_rewrite", allow, new_model="qwen3-max-preview"),
                    recorder_port)
            for size in (1024, 1_000_000):
                status, data, _ = post(ports["gw_listen"], bodies.chat_body(size))
                expect(status == 200 and data.get("model") == "qwen3-max-preview"
                       and data["received"]["chunked"]
                       and data["received"]["content_length"] is None,
                       f"serde_rewrite ({tag}): {size} B body -> upstream got model "
                       "qwen3-max-preview, chunked", f"{status} {str(data)[:300]}")
            not_json = b"{not json" + b"x" * 1000
            status, data, _ = post(ports["gw_listen"], not_json)
            expect(status == 200 and data["received"]["length"] == len(not_json),
                   f"serde_rewrite ({tag}): a body that is not JSON passes untouched",
                   f"{status} {data}")

            start_gateway(bench_wasm("buffer_only", allow), recorder_port)
            for size in (1024, 1_000_000):
                sent = bodies.chat_body(size)
                status, data, _ = post(ports["gw_listen"], sent)
                expect(status == 200
                       and data["received"]["sha256"] == hashlib.sha256(sent).hexdigest()
                       and data["received"]["chunked"],
                       f"buffer_only ({tag}): {size} B body -> upstream got it byte for byte, "
                       "chunked", f"{status} {str(data)[:300]}")

            if allow:  # body_round_trip holds the headers: it needs the body while they wait
                start_gateway(bench_wasm("body_round_trip", allow), recorder_port)
                for size in (1024, 1_000_000):
                    sent = bodies.chat_body(size)
                    status, data, _ = post(ports["gw_listen"], sent)
                    expect(status == 200
                           and data["received"]["sha256"] == hashlib.sha256(sent).hexdigest(),
                           f"body_round_trip ({tag}): {size} B body -> upstream got it byte for "
                           "byte", f"{status} {str(data)[:300]}")
                # decided at the headers, with ours' calls of every kind: the body streams
                start_gateway(GATEWAYS["calls_like_ours"][1], recorder_port)
                wanted = json.loads(GATEWAYS["calls_like_ours"][1]["configuration"])
                for size in (1024, 1_000_000):
                    sent = bodies.chat_body(size)
                    status, data, _ = post(ports["gw_listen"], sent)
                    got = data["received"] if status == 200 else {}
                    expect(status == 200 and got.get("sha256") == hashlib.sha256(sent).hexdigest()
                           and got.get("chunked") and got.get("content_length") is None
                           and got["headers"].get("x-selected-provider") in ("minmax", "qianwen"),
                           f"calls_like_ours ({tag}): {size} B body -> upstream got it byte for "
                           "byte, chunked, with x-selected-provider", f"{status} {str(data)[:300]}")
                counters = bench_counters(ports["gw_admin"])
                expect(len(counters) == wanted["counter_increments"]
                       and set(counters.values()) == {2},
                       f"calls_like_ours ({tag}): its {wanted['counter_increments']} counters "
                       "moved once per request", str(counters))
                for _ in range(8):
                    post(ports["gw_listen"], body)
                counts = routed(ports["gw_admin"])
                expect(counts == {"minmax": 5, "qianwen": 5},
                       f"calls_like_ours ({tag}): 10 requests routed in turn, 5 to each",
                       str(counts))
                check_response_side(start_gateway, ports, body)
                start_gateway(bench_wasm("store_round_trip", allow, shared_data_key="bench.loads"),
                              recorder_port)
                before = mget_calls(ports["redis"])
                status, data, _ = post(ports["gw_listen"], body)
                expect(status == 200 and mget_calls(ports["redis"]) == before + 1
                       and data["received"]["headers"].get("x-selected-provider") == "minmax",
                       f"store_round_trip + shared_data_key ({tag}): one MGET, routed to minmax",
                       f"{status} {data}")

            # the real filter through the same renderer, with envoy/envoy.yaml's configuration
            start_gateway(filter_wasm(allow_stop=allow), recorder_port)
            redis_cli(ports["redis"], "SET", "ai_metric:minimax_1", "90")
            redis_cli(ports["redis"], "SET", "ai_metric:qwen_1", "10")
            status, data, _ = post(ports["gw_listen"], body)
            expect(status == 200 and data.get("model") == "qwen3-max-preview"
                   and data["received"]["headers"]["x-selected-provider"] == "qianwen"
                   and routed(ports["gw_admin"]) == {"minmax": 0, "qianwen": 1},
                   f"real filter ({tag}): loads 90/10 -> qianwen, model rewritten",
                   f"{status} {data}")

        # 5. a bad configuration: refused, the log names the field
        procs.kill("gateway")
        bad = bench_wasm("store_round_trip", timeout_ms=0)
        config = workdir / "bad.yaml"
        config.write_text(envoy_configs.gateway_config(
            ports["gw_admin"], ports["gw_listen"], recorder_port, ports["webdis"], bad))
        try:
            done = subprocess.run([envoy_binary(), "-c", str(config), "--concurrency", "1",
                                   "--use-dynamic-base-id", "-l", "warning"],
                                  capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            raise CheckFailed("bad configuration: Envoy started anyway") from None
        expect(done.returncode != 0 and "field `timeout_ms`" in done.stderr,
               "bad configuration: Envoy refuses to start, log names field `timeout_ms`",
               f"rc={done.returncode}\n{done.stderr[-1500:]}")
        print("all checks passed")
        return 0
    except (CheckFailed, gateway.StackError) as err:
        print(f"FAIL {err}", file=sys.stderr)
        if current:
            print(f"--- {current} log ---\n{procs.log_tail(current)}", file=sys.stderr)
        return 1
    finally:
        procs.stop()
        recorder.shutdown()


if __name__ == "__main__":
    sys.exit(main())
