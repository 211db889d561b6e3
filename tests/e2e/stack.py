"""Talking to the end-to-end stack the way the seed's checklist does: curl for requests, the
Envoy admin stats for the filter's counters. The stack itself is scripts/gateway.py's `Stack`
(one implementation, shared with `make run`).
"""
import base64
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import gateway  # noqa: E402  (scripts/ is not a package)

MODEL_OF = gateway.PROVIDERS  # provider name -> the model the filter writes for it
CHAT_PATH = "/masgod/v1/chat/completions"
SEED_BODY = '{"model":"auto","messages":[{"role":"user","content":"你好"}]}'
KEYS = {"minmax": "ai_metric:minimax_1", "qianwen": "ai_metric:qwen_1"}


@dataclass
class Answer:
    status: int
    seconds: float
    headers: dict
    raw: bytes

    @property
    def streamed(self):
        return self.headers.get("content-type", "").startswith("text/event-stream")

    @property
    def events(self):
        """A streamed answer's server-sent events, in order: each `data:` as JSON, and the
        closing `[DONE]` as that string."""
        assert self.streamed, f"not a stream: {self.headers.get('content-type')}"
        events = []
        for block in self.raw.decode().split("\n\n"):
            data = "\n".join(line[len("data: "):] for line in block.splitlines()
                             if line.startswith("data: "))
            if data:
                events.append(data if data == "[DONE]" else json.loads(data))
        return events

    @property
    def json(self):
        """The JSON body; of a stream, its first event, which names the provider, the model
        and what arrived as a whole answer does (scripts/mock_provider.py)."""
        return self.events[0] if self.streamed else json.loads(self.raw)

    @property
    def provider(self):
        return self.json["provider"]

    @property
    def received(self):
        return self.json["received"]


def curl(stack, args, body=None, timeout_s=30):
    """Runs `curl ARGS` (method, URL, headers); returns the status, time, headers and body.

    With `body` (bytes) the request body is sent byte for byte from a file (--data-binary).
    """
    with tempfile.TemporaryDirectory(prefix="ai-lb-curl-") as tmp:
        out, head = Path(tmp, "body"), Path(tmp, "headers")
        argv = ["curl", "-sS", "-m", str(timeout_s), "-o", str(out), "-D", str(head),
                "-w", "%{http_code} %{time_total}", *args]
        if body is not None:
            Path(tmp, "request").write_bytes(body)
            argv += ["--data-binary", "@" + str(Path(tmp, "request"))]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s + 5)
        if done.returncode != 0:
            raise AssertionError(f"curl failed ({done.returncode}): {done.stderr}\n"
                                 + stack.log_tail("envoy"))
        status, seconds = done.stdout.split()
        headers = {}
        for line in head.read_text(errors="replace").splitlines()[1:]:
            name, _, value = line.partition(":")
            if value:
                headers[name.strip().lower()] = value.strip()
        return Answer(int(status), float(seconds), headers, out.read_bytes())


def post(stack, body, headers=(), path=CHAT_PATH, timeout_s=30):
    """POSTs `body` (bytes) as JSON; extra headers as ("name", "value") pairs."""
    args = ["-X", "POST", stack.url + path, "-H", "Content-Type: application/json"]
    for name, value in headers:
        args += ["-H", f"{name}: {value}"]
    return curl(stack, args, body=body, timeout_s=timeout_s)


def seed_request(stack):
    """Exactly the seed checklist's request (curl -X POST … -H … -d '…')."""
    return curl(stack, ["-X", "POST", stack.url + CHAT_PATH,
                        "-H", "Content-Type: application/json", "-d", SEED_BODY])


def assert_answered_consistently(answer, stack):
    """200 from a mock, and the body's model is the one for the provider that answered."""
    assert answer.status == 200, answer.raw[:500]
    assert answer.headers.get("x-mock-provider") == answer.provider
    assert answer.json["model"] == MODEL_OF[answer.provider], answer.json
    assert answer.received["headers"]["x-selected-provider"] == answer.provider


def counter(stack, name):
    """A filter counter (0 before its first use): e.g. counter(stack, "fallback.store_error")."""
    return stack.stats().get("wasmcustom.ai_lb." + name, 0)


# ---- stacks with a plugin configuration of their own (model pools, load sources) ------------

@contextlib.contextmanager
def running_stack(plugin_config, **options):
    """A whole stack whose filter runs `plugin_config` (YAML text) instead of envoy.yaml's; the
    mocks start idle and fast. Stopped on exit."""
    running = gateway.Stack(plugin_config=plugin_config, **options)
    try:
        running.start()
    except gateway.StackError as err:
        pytest.fail(f"cannot start the stack: {err}", pytrace=False)
    try:
        yield running
    finally:
        running.stop()


def status_page(stack, path="/ai-lb/status"):
    """The filter's status page (`status_endpoint`), asked from loopback: {provider name: its
    entry}."""
    answer = curl(stack, [stack.url + path])
    assert answer.status == 200, answer.raw[:300]
    assert "x-mock-provider" not in answer.headers, "a provider answered, not the filter"
    return {entry["name"]: entry for entry in answer.json["providers"]}


def chat_body(model, content="hi", system=None):
    """A chat completion request as bytes; `system` adds a system prompt first."""
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": content})
    return json.dumps({"model": model, "messages": messages}, ensure_ascii=False).encode()


def wait_for(condition, timeout_s, what, poll_s=0.05):
    """Polls `condition` until it returns something true, and returns that; fails naming
    `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(poll_s)
    return result


class Background:
    """Requests sent from threads, so that several are in flight at once; `answers()` waits for
    all of them (each curl has its own timeout, so the wait is bounded)."""

    def __init__(self):
        self.threads = []
        self.results = []
        self.lock = threading.Lock()

    def post(self, stack, body, **options):
        def run():
            try:
                outcome = post(stack, body, **options)
            except AssertionError as err:  # curl failed: reported by answers()
                outcome = err
            with self.lock:
                self.results.append(outcome)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def outcomes(self, timeout_s=40):
        """Each request's `Answer`, or the AssertionError of a curl that failed (gave up)."""
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in self.threads), "requests still running"
        with self.lock:
            return list(self.results)

    def answers(self, timeout_s=40):
        """Every request's `Answer`; fails if a curl failed."""
        results = self.outcomes(timeout_s)
        failed = [result for result in results if isinstance(result, AssertionError)]
        assert not failed, failed[0]
        return results


# ---- what the upstreams received, exactly (scripts/mock_provider.py GET /_mock/received) -----

@dataclass
class Received:
    """One request as a mock received it: header names lowercase as Envoy sends them, in
    order, repeats included."""
    mock: str
    method: str
    path: str
    headers: list  # [(name, value), ...]
    body: bytes
    chunked: bool
    trailers: list  # [(name, value), ...]

    def values(self, name):
        """Every value of header `name` (lowercase), in order."""
        return [value for header, value in self.headers if header == name]

    def header_names(self):
        return {name for name, _ in self.headers}


def forget_received(stack):
    """Every mock of `stack` forgets what it received, so that the next look shows only what
    came after."""
    for name in stack.mock_names():
        stack.forget_received(name)


def upstream_requests(stack):
    """Every request the mocks received since `forget_received`, in each mock's order."""
    requests = []
    for name in stack.mock_names():
        for entry in stack.mock_received(name)["requests"]:
            requests.append(Received(
                mock=name, method=entry["method"], path=entry["path"],
                headers=[tuple(pair) for pair in entry["headers"]],
                body=base64.b64decode(entry["body_base64"]), chunked=entry["chunked"],
                trailers=[tuple(pair) for pair in entry["trailers"]]))
    return requests


def only_upstream_request(stack):
    """The one request an upstream received since `forget_received`; fails if there were none
    or several (a retry or a duplicate would show here)."""
    requests = upstream_requests(stack)
    assert len(requests) == 1, [(r.mock, r.method, r.path) for r in requests]
    return requests[0]


def http1(stack, method, path, headers=(), body=b"", timeout_s=10, pause_after=None,
          pause_s=0.0):
    """Sends exactly this HTTP/1.1 request (the headers as given, plus Content-Length when there
    is a body and Connection: close) on a new connection; returns the `Answer`. `pause_after`:
    send the head and that many body bytes, wait `pause_s`, then the rest (a client whose body
    trails its headers)."""
    lines = [f"{method} {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    first = len(request) - len(body) + (len(body) if pause_after is None else pause_after)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", stack.ports["listen"]), timeout=timeout_s) as conn:
        conn.sendall(request[:first])
        if first < len(request):
            time.sleep(pause_s)
            conn.sendall(request[first:])
        reader = conn.makefile("rb")
        status_line = reader.readline().decode("iso-8859-1")
        answer_headers = {}
        while line := reader.readline().decode("iso-8859-1").strip():
            name, _, value = line.partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        if "content-length" not in answer_headers:
            raise AssertionError(f"http1(): an answer without Content-Length: {answer_headers}")
        # Read by length, not to the close: Envoy closes a connection it answered locally
        # only after its delayed-close timeout (1 s).
        raw = reader.read(int(answer_headers["content-length"]))
    return Answer(int(status_line.split(" ", 2)[1]), time.monotonic() - started,
                  answer_headers, raw)
