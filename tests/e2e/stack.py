"""Talking to the end-to-end stack the way the seed's checklist does: curl for requests, the
Envoy admin stats for the filter's counters. The stack itself is scripts/gateway.py's `Stack`
(one implementation, shared with `make run`).
"""
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

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
    def json(self):
        return json.loads(self.raw)

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


def post(stack, body, headers=(), path=CHAT_PATH):
    """POSTs `body` (bytes) as JSON; extra headers as ("name", "value") pairs."""
    args = ["-X", "POST", stack.url + path, "-H", "Content-Type: application/json"]
    for name, value in headers:
        args += ["-H", f"{name}: {value}"]
    return curl(stack, args, body=body)


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
