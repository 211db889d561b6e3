"""The host boundary under load, in real Envoy (issue 15): nothing a client or the store does
takes a worker's VM down, leaves a request hanging, or loses a body.

One stack per body-delivery mode (`allow_on_headers_stop_iteration` true, as shipped, and
Envoy's default), each with two workers (two VMs of the filter) and envoy/envoy.yaml's 64 MiB
buffers (`per_connection_buffer_limit_bytes` on the listener and the provider clusters):

1. 48 chat requests of 4 MiB, 24 at a time: every one answered 200, and the provider received
   exactly the client's bytes with only the top-level model value replaced (the mocks answer
   with the sha256 of what they received).
2. 300 clients send the headers and half the body, then disconnect (half of them with a
   reset): Envoy lets go of every connection, no provider gets any of them whole, and the next
   requests, on both workers, are answered and balanced.
3. A store that answers badly: non-numeric values in the real Redis, a 16 MiB value read
   through the real Webdis, and a stand-in on the Webdis cluster's port that answers what
   Webdis never would (random bytes, a random body, JSON nested 100000 deep, one byte every
   200 ms). Each request is answered within the store's `timeout_ms` plus the provider, by
   weight (the loads in Redis would choose the other provider).
4. Last, on each stack: Envoy's log shows no failed VM, no VM was created or reloaded after
   start, and Envoy's peak RSS (VmHWM) is printed and written to target/e2e-boundaries.json.
"""
import hashlib
import json
import random
import re
import socket
import socketserver
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stack import (CHAT_PATH, MODEL_OF, ROOT, chat_body, counter, forget_received, gateway,
                   post, running_stack, upstream_requests, wait_for)

WORKERS = 2
# Webdis alone takes about 0.3 s to send a 16 MiB value here: a second lets that reply reach
# the filter, and keeps the stand-ins' runs short.
STORE_TIMEOUT_MS = 1000
# minmax has all the weight: whenever weights decide, minmax answers. The loads the tests put
# in Redis make qianwen the least loaded, so an answer from minmax shows the weights decided.
# `down_after_failures` at its maximum: every request asks the store, none skips it as down.
CONFIG = f"""
providers:
- {{name: minmax, key: minimax_1, model: MiniMax-M2.1, weight: 1}}
- {{name: qianwen, key: qwen_1, model: qwen3-max-preview, weight: 0}}
redis:
  cluster: webdis
  protocol: webdis
  timeout_ms: {STORE_TIMEOUT_MS}
  down_after_failures: 1000
"""
BY_WEIGHT, BY_LOAD = "minmax", "qianwen"
KEYS = {"minmax": "ai_metric:minimax_1", "qianwen": "ai_metric:qwen_1"}
MODES = {"body-while-paused": True, "envoy-default": False}
RESULTS_FILE = ROOT / "target" / "e2e-boundaries.json"
RESULTS = {}  # mode -> figures, written to RESULTS_FILE
VMS_CREATED_AT_START = {}  # mode -> Envoy's wasm VM count once the stack was ready


@pytest.fixture(scope="module", params=list(MODES))
def two_workers(request):
    """The stack for one body-delivery mode; every test of this file runs on it in turn."""
    with running_stack(CONFIG, concurrency=WORKERS,
                       body_while_headers_paused=MODES[request.param]) as running:
        VMS_CREATED_AT_START[request.param] = wasm_stats(running)[VMS_CREATED]
        yield running


def mode_of(stack):
    return "body-while-paused" if stack.body_while_headers_paused else "envoy-default"


def set_loads(stack, **values):
    """Loads in the real Redis: set_loads(stack, minmax=90, qianwen=None); None deletes."""
    for provider, value in values.items():
        if value is None:
            stack.redis_cli("DEL", KEYS[provider])
        else:
            redis_set(stack, KEYS[provider], str(value).encode())


def redis_set(stack, key, value):
    """SET `key` to `value` (bytes of any size or content) over RESP: redis-cli's arguments
    cannot carry a NUL byte or 16 MiB."""
    parts = [b"SET", key.encode(), value]
    command = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", stack.ports["redis"]), timeout=10) as conn:
        conn.sendall(command)
        assert conn.recv(64).startswith(b"+OK")


WEIGHT_REASONS = ("store_error", "store_down", "all_unknown")


def picked_by_weight(stack):
    """Requests the filter sent by weight, by reason: the store failed or answered nothing
    readable (`store_error`), was known down (`store_down`), or knew no load
    (`all_unknown`)."""
    return {reason: counter(stack, "fallback." + reason) for reason in WEIGHT_REASONS}


# ---- 1. large bodies, many at once ---------------------------------------------------------

LARGE_BODY_BYTES = 4 * 1024 * 1024
LARGE_REQUESTS = 48
LARGE_AT_ONCE = 24
# A log pasted into a chat: non-ASCII text, quotes, backslashes, newlines, and "model" inside
# strings, all of which JSON escapes or keeps as they are.
LOG_LINE = ('2025-03-14T09:26:53Z worker-7 ERROR "model": "auto" rejected by C:\\models\\auto '
            '— 模型调用超时 (timeout) — retrying…\n')
LOG_TEXT = LOG_LINE * (LARGE_BODY_BYTES // len(json.dumps(LOG_LINE, ensure_ascii=False)) + 1)
LOG_TEXT_IN_JSON = json.dumps(LOG_TEXT, ensure_ascii=False)[1:-1]  # escaped, once


def large_chat_body(index, model):
    """A chat request of a little over 4 MiB, request `index` named in it (no two alike), a
    nested `model` that is not the top-level one, and the top-level `model` last, so the
    filter reads the whole body before it finds it."""
    return ('{"messages": [{"role": "system", "content": "You review incident logs.", '
            '"model": "inner"}, {"role": "user", "content": '
            f'"Request {index}: what failed here?\\n{LOG_TEXT_IN_JSON}"}}], '
            '"temperature": 0.2, "max_tokens": 512, "stream": false, '
            f'"model": {json.dumps(model)}}}').encode()


def assert_rewritten_whole(stack, answer, index):
    """200, and the provider that answered received request `index` byte for byte with only
    the top-level model replaced by its own."""
    assert answer.status == 200, answer.raw[:300]
    expected = large_chat_body(index, MODEL_OF[answer.provider])
    received = answer.received
    assert received["headers"]["x-selected-provider"] == answer.provider
    assert (received["length"], received["sha256"]) == (
        len(expected), hashlib.sha256(expected).hexdigest()), f"request {index}: body changed"
    # Whole headers wait for the body only when some of it came before the store's reply;
    # otherwise they go on without content-length and the body follows chunked.
    if not received["chunked"]:
        assert received["content_length"] == len(expected), received


def test_4_mib_bodies_24_at_a_time_are_all_answered_and_rewritten(two_workers):
    stack = two_workers
    set_loads(stack, minmax=50, qianwen=50)  # a tie: both providers get some
    assert len(large_chat_body(0, "auto")) >= LARGE_BODY_BYTES
    assert json.loads(large_chat_body(0, "auto"))["model"] == "auto"
    rewritten_before = counter(stack, "rewrite.done")

    def send(index):
        return post(stack, large_chat_body(index, "auto"), timeout_s=60)

    started = time.monotonic()
    with ThreadPoolExecutor(LARGE_AT_ONCE) as clients:
        answers = list(clients.map(send, range(LARGE_REQUESTS)))
    seconds = time.monotonic() - started
    for index, answer in enumerate(answers):
        assert_rewritten_whole(stack, answer, index)
    assert counter(stack, "rewrite.done") == rewritten_before + LARGE_REQUESTS
    forget_received(stack)  # the mocks keep what they received: 192 MiB
    chunked = sum(answer.received["chunked"] for answer in answers)
    print(f"\n{mode_of(stack)}: {LARGE_REQUESTS} x 4 MiB, {LARGE_AT_ONCE} at a time: "
          f"{seconds:.1f} s, slowest {max(a.seconds for a in answers):.1f} s, "
          f"{chunked} went on chunked")
    RESULTS.setdefault(mode_of(stack), {})["large_bodies_seconds"] = round(seconds, 1)


# ---- 2. clients that leave halfway ---------------------------------------------------------

ABANDONING_CLIENTS = 300
ABANDONING_AT_ONCE = 50
ABANDONED_BODY = chat_body("auto", "a question the client never finishes sending " * 5000)
# How long a client waits after half its body before it leaves: at once, or once the filter
# has asked the store and chosen.
WAITS_BEFORE_LEAVING_S = (0.0, 0.05, 0.2)
FOLLOW_UP_REQUESTS = 20


def send_half_and_leave(stack, index):
    """The headers and half the body of a chat request, then the connection closes: with a
    FIN for even `index`, a reset (SO_LINGER 0) for odd."""
    head = (f"POST {CHAT_PATH} HTTP/1.1\r\nHost: gateway\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(ABANDONED_BODY)}\r\n"
            "\r\n").encode()
    with socket.create_connection(("127.0.0.1", stack.ports["listen"]), timeout=10) as conn:
        conn.sendall(head + ABANDONED_BODY[:len(ABANDONED_BODY) // 2])
        time.sleep(WAITS_BEFORE_LEAVING_S[index % len(WAITS_BEFORE_LEAVING_S)])
        if index % 2:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_300_clients_that_leave_halfway_leave_the_gateway_answering(two_workers):
    stack = two_workers
    set_loads(stack, minmax=90, qianwen=10)
    forget_received(stack)
    started = time.monotonic()
    with ThreadPoolExecutor(ABANDONING_AT_ONCE) as clients:
        list(clients.map(lambda index: send_half_and_leave(stack, index),
                         range(ABANDONING_CLIENTS)))
    wait_for(lambda: sum(stack.worker_connections("downstream_cx_active")) == 0, 10,
             "Envoy closed every abandoned connection")
    print(f"\n{mode_of(stack)}: {ABANDONING_CLIENTS} clients left halfway in "
          f"{time.monotonic() - started:.1f} s")
    # Once the provider is chosen the body streams on (rewritten as it passes), so a provider
    # may see such a request begin; Envoy resets it when its client leaves, and no provider
    # ever gets one whole.
    assert upstream_requests(stack) == [], "a request whose client left reached a provider whole"

    accepted_before = stack.worker_connections()
    for turn in range(FOLLOW_UP_REQUESTS):
        sent = chat_body("auto", f"follow-up {turn}")
        answer = post(stack, sent, timeout_s=10)
        assert answer.status == 200, answer.raw[:300]
        assert answer.provider == BY_LOAD, "balanced by the loads in Redis"
        expected = sent.replace(b'"model": "auto"', f'"model": "{MODEL_OF[BY_LOAD]}"'.encode())
        assert answer.received["sha256"] == hashlib.sha256(expected).hexdigest()
    accepted = [now - before for now, before in zip(stack.worker_connections(), accepted_before)]
    assert all(accepted), f"both workers (VMs) served follow-ups: {accepted}"


# ---- 3. a store that answers badly ----------------------------------------------------------

STORE_REQUESTS = 4
ANSWER_WITHIN_S = STORE_TIMEOUT_MS / 1000 + 1.5  # the store's timeout, then the provider
STORE_VALUE_BYTES = 16 * 1024 * 1024
TRICKLE_EVERY_S = 0.2
GARBAGE = random.Random(15).randbytes(4096)
DEEP_JSON = b'{"MGET":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
WEBDIS_LIKE_REPLY = b'{"MGET":["90","10"]}'


class StandInStore(socketserver.ThreadingTCPServer):
    """Listens on the Webdis cluster's port in Webdis's place and answers each request with
    `reply(connection, stopping)`, one request per connection. `close()` stops it and waits
    for every connection's thread (a trickle stops at `stopping`)."""
    allow_reuse_address = True
    daemon_threads = False

    def __init__(self, port, reply):
        super().__init__(("127.0.0.1", port), StandInHandler)
        self.reply = reply
        self.stopping = threading.Event()
        self.asked = 0  # requests read (their threads only add: an exact count is not needed)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stopping.set()
        self.shutdown()
        self.server_close()  # joins the connections' threads


class StandInHandler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(2)
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.server.asked += 1
            self.server.reply(conn, self.server.stopping)
        except OSError:  # Envoy gave up on the call and closed the connection
            pass


def http_answer(body):
    """A well-formed HTTP/1.1 200 answer carrying `body`, then the connection closes."""
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


def http_reply(body):
    """Answers `body` at once: what Webdis would never send, when `body` is no Webdis JSON."""
    def reply(conn, stopping):
        conn.sendall(http_answer(body))
    return reply


def random_bytes(conn, stopping):
    conn.sendall(GARBAGE)


def one_byte_every_200_ms(conn, stopping):
    """A Webdis-like answer, one byte at a time (until Envoy gives up and closes)."""
    for byte in http_answer(WEBDIS_LIKE_REPLY):
        if stopping.wait(TRICKLE_EVERY_S):
            return
        conn.sendall(bytes([byte]))


STAND_INS = {
    "random-bytes-not-http": random_bytes,
    "http-200-random-body": http_reply(GARBAGE),
    "json-nested-100000-deep": http_reply(DEEP_JSON),
    "one-byte-every-200-ms": one_byte_every_200_ms,
}


def assert_answered_by_weight_in_time(stack):
    """STORE_REQUESTS requests, each answered 200 within ANSWER_WITHIN_S by the provider the
    weights choose, with its model; the filter counts each as picked by weight. Prints why
    the weights decided and the slowest answer."""
    before = picked_by_weight(stack)
    seconds = []
    for turn in range(STORE_REQUESTS):
        answer = post(stack, chat_body("auto", f"store question {turn}"), timeout_s=10)
        assert answer.status == 200, answer.raw[:300]
        assert answer.seconds < ANSWER_WITHIN_S, f"answered after {answer.seconds:.2f} s"
        assert answer.provider == BY_WEIGHT
        assert answer.json["model"] == MODEL_OF[BY_WEIGHT]
        seconds.append(answer.seconds)
    after = picked_by_weight(stack)
    reasons = {reason: after[reason] - before[reason] for reason in WEIGHT_REASONS
               if after[reason] != before[reason]}
    assert sum(reasons.values()) == STORE_REQUESTS, reasons
    print(f" [{mode_of(stack)}: by weight {reasons}, slowest {max(seconds):.2f} s]", end="")


def assert_loads_decide(stack):
    """The store answers: the least loaded provider (not the weighted one) is chosen."""
    set_loads(stack, minmax=90, qianwen=10)
    answer = post(stack, chat_body("auto", "is the store back?"), timeout_s=10)
    assert answer.status == 200 and answer.provider == BY_LOAD, answer.raw[:300]


@pytest.mark.parametrize("values", [
    pytest.param({"minmax": b"NaN", "qianwen": b'12"}\\\x00\xff\xfe garbage'}, id="non-numeric"),
    pytest.param({"minmax": b"x" * STORE_VALUE_BYTES, "qianwen": None}, id="16-MiB-value"),
])
def test_redis_values_that_are_no_load_leave_weights_to_decide(two_workers, values):
    stack = two_workers
    assert_loads_decide(stack)
    try:
        for provider, value in values.items():
            if value is None:
                stack.redis_cli("DEL", KEYS[provider])
            else:
                redis_set(stack, KEYS[provider], value)
        assert_answered_by_weight_in_time(stack)
    finally:
        set_loads(stack, minmax=90, qianwen=10)  # frees the 16 MiB
    assert not stack.dead(), stack.dead()
    assert_loads_decide(stack)


@pytest.mark.parametrize("reply", list(STAND_INS.values()), ids=list(STAND_INS))
def test_a_store_answering_what_webdis_never_would_costs_at_most_its_timeout(two_workers, reply):
    stack = two_workers
    assert_loads_decide(stack)
    stack.stop_webdis()
    stand_in = StandInStore(stack.ports["webdis"], reply)
    try:
        assert_answered_by_weight_in_time(stack)
        assert stand_in.asked >= 1, "the stand-in was never asked"
    finally:
        stand_in.close()
        stack.start_webdis()
    assert_loads_decide(stack)


# ---- 4. after all of it ---------------------------------------------------------------------

VMS_CREATED = "wasm.envoy.wasm.runtime.v8.created"
FAILED_VM_SIGNS = re.compile(
    r"Wasm VM failed|wasm_fail|panicked|unreachable|Function: .* failed|restricted_callback")
RSS_SANITY_BOUND_KIB = 4 * 1024 * 1024


def wasm_stats(stack):
    """Envoy's own wasm figures: VMs created and active, reloads of a failed VM."""
    return gateway.admin_counters(stack.admin_url, r"^wasm\.")


def envoy_memory_kib(stack):
    """{"VmHWM": peak resident KiB, "VmRSS": resident KiB now} of the Envoy process."""
    status = Path(f"/proc/{stack.procs['envoy'].pid}/status").read_text()
    return {name: int(value.split()[0]) for name, value in
            (line.split(":", 1) for line in status.splitlines()) if name in ("VmHWM", "VmRSS")}


def write_results():
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(RESULTS, indent=2, sort_keys=True) + "\n")


def test_no_vm_failed_and_peak_memory_is_reported(two_workers):
    stack = two_workers
    mode = mode_of(stack)
    memory = envoy_memory_kib(stack)
    RESULTS.setdefault(mode, {}).update(
        workers=WORKERS, envoy_peak_rss_mib=round(memory["VmHWM"] / 1024, 1),
        envoy_rss_at_end_mib=round(memory["VmRSS"] / 1024, 1))
    write_results()
    print(f"\n{mode}: Envoy peak RSS {memory['VmHWM'] / 1024:.0f} MiB, "
          f"{memory['VmRSS'] / 1024:.0f} MiB at the end ({RESULTS_FILE})")

    log = Path(stack.logs["envoy"]).read_text(errors="replace")
    signs = [line for line in log.splitlines() if FAILED_VM_SIGNS.search(line)]
    assert not signs, "a VM failed:\n" + "\n".join(signs[:20])
    assert not stack.dead(), stack.dead()
    stats = wasm_stats(stack)
    assert stats[VMS_CREATED] == VMS_CREATED_AT_START[mode], "a VM was created after start"
    reloads = {name: value for name, value in stats.items() if ".vm_reload" in name and value}
    assert not reloads, reloads
    assert memory["VmHWM"] < RSS_SANITY_BOUND_KIB
