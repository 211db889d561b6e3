"""LiteLLM's proxy as the benchmark's peer: what users would run instead of ai-load-balancer.

Stdlib only: the harness imports this from the project's test venv (.venv), while LiteLLM lives
in its own venv (.venv-litellm, made by bench/setup_litellm.sh) and runs as a subprocess.

    with LiteLLMProxy(workdir, port=18080, upstream_port=18081) as peer:
        POST f"{peer.url}/v1/chat/completions"  {"model": "auto", "messages": [...]}

One public model, `auto`, with two deployments on the upstream (openai/MiniMax-M2.1 under
/minmax/v1, openai/qwen3-max-preview under /qianwen/v1), picked per request by LiteLLM's router
with `simple-shuffle`. One uvicorn worker process (`--num_workers 1`), to compare with Envoy at
`--concurrency 1`. No master key, so clients send no auth, as with the Envoy filter.

`python3 bench/litellm_peer.py` is a self-check: it starts a stdlib upstream and the proxy,
sends requests, and prints which deployments the upstream saw.

Settings: LiteLLM as fast as it honestly goes while still doing its job (routing between two
deployments and making the OpenAI call through its own client, with its normal auth step,
hooks and cost tracking in memory). Each is documented by LiteLLM for production or its own
load tests, or turns off a feature this comparison does not use. None skips the request path.

  Environment:
    LITELLM_LOG=ERROR                   logger at ERROR; the CLI then runs uvicorn with
                                        log_level=error: no per-request access-log line
    LITELLM_LOCAL_MODEL_COST_MAP=True   the bundled cost map, never fetched (offline; it also
                                        skips a 3-try fetch with back-off at start-up)
    LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS, _BLOG_POSTS, _AUTOROUTER_PRESETS, _POLICY_TEMPLATES=True
                                        the other files LiteLLM may fetch: bundled copies only
    LITELLM_MODE=PRODUCTION             no .env loading from the working directory
    DISABLE_ADMIN_UI=True, NO_DOCS=True, NO_REDOC=True   no admin UI, no API docs pages
    LITELLM_DONT_SHOW_FEEDBACK_BOX=True
    DISABLE_AIOHTTP_TRUST_ENV=True, NO_PROXY=*   upstream calls go straight to 127.0.0.1, never
                                        through an HTTP(S)_PROXY of the caller's environment
    DATABASE_URL, LITELLM_MASTER_KEY, REDIS_* ... removed from the inherited environment: no
                                        database (so no spend or error-log writes at all), no
                                        auth, no shared cache or limits
    LiteLLM 1.106 sends no telemetry of its own; with no callbacks nothing leaves the machine
    (checked with strace: its only connect() calls go to the upstream on 127.0.0.1).

  Config:
    litellm_settings: callbacks/success_callback/failure_callback: []   no logging integrations
                      cache: false      no response cache (Envoy caches nothing either)
                      num_retries: 0, request_timeout: 30   as in LiteLLM's own benchmark config:
                                        an upstream failure is an error, not a hidden retry
    router_settings:  routing_strategy: simple-shuffle   LiteLLM's recommended and cheapest
                                        strategy (no Redis, no usage-based bookkeeping)
    general_settings: disable_spend_logs, disable_error_logs, disable_spend_updates,
                      disable_reset_budget: true   no spend or budget bookkeeping (no DB anyway)
                      background_health_checks: false, disable_model_info_refresh: true
                                        no calls of its own to the deployments (health checks;
                                        GET .../models discovery at start and every 5 minutes)
                      dangerously_permit_weak_or_unset_master_key: true   this LiteLLM refuses to
                                        start with no master key unless told it is intended;
                                        it listens on 127.0.0.1 only
    model_info: the two models' list prices. They are not in LiteLLM's cost map; a user of
                custom models gives prices, and cost tracking then takes its normal path (a
                missing price costs a failed look-up, a zero price a diagnostic, per request).
  Install (bench/requirements-litellm.txt): opentelemetry-sdk beside litellm[proxy], without
    which LiteLLM 1.106.2 retries a failing import on every request (see that file).

  Tried and left out, no gain that showed through this machine's noise: --run_granian
  (LiteLLM's Rust HTTP server option), httptools for uvicorn (LiteLLM does not install it),
  PYTHON_GC_THRESHOLD. LITELLM_RUST does nothing here: its Rust core does not serve
  /chat/completions in 1.106.2. Left out because it
  costs time: turn_off_message_logging (it deep-copies each payload to redact it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Overridable so a harness can point at a venv elsewhere.
VENV = Path(os.environ.get("LITELLM_VENV", REPO / ".venv-litellm"))

PUBLIC_MODEL = "auto"
DEPLOYMENTS = (
    # (LiteLLM model, path prefix on the upstream, USD per input token, per output token)
    ("openai/MiniMax-M2.1", "/minmax/v1", 0.3e-6, 1.2e-6),
    ("openai/qwen3-max-preview", "/qianwen/v1", 1.2e-6, 6.0e-6),
)

# Variables removed from the inherited environment: each would turn on a feature (database,
# auth, Redis, a config from elsewhere) that this comparison keeps off.
_DROP_ENV = (
    "DATABASE_URL",
    "DIRECT_URL",
    "LITELLM_MASTER_KEY",
    "LITELLM_SALT_KEY",
    "CONFIG_FILE_PATH",
    "STORE_MODEL_IN_DB",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_URL",
    "REDIS_PASSWORD",
    "LITELLM_LICENSE",
    "NUM_WORKERS",
    "PORT",
    "HOST",
)

_ENV = {
    "LITELLM_LOG": "ERROR",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
    "NO_REDOC": "True",
    "DISABLE_AIOHTTP_TRUST_ENV": "True",
    "NO_PROXY": "*",
    "no_proxy": "*",
    "PYTHONUNBUFFERED": "1",
}


def _python() -> Path:
    return VENV / "bin" / "python"


def _require_venv() -> None:
    if not (VENV / "bin" / "litellm").exists():
        raise RuntimeError(
            f"LiteLLM is not installed in {VENV}: run `bash bench/setup_litellm.sh` first"
        )


_version: str | None = None


def peer_version() -> str:
    """The installed LiteLLM version, e.g. "1.106.2" (read from the venv, not imported here)."""
    global _version
    if _version is None:
        _require_venv()
        out = subprocess.run(
            [str(_python()), "-c", 'import importlib.metadata as m; print(m.version("litellm"))'],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0:
            raise RuntimeError(
                f"could not read LiteLLM's version from {VENV}: {out.stderr.strip()}"
            )
        _version = out.stdout.strip()
    return _version


def config_yaml(upstream_port: int) -> str:
    """The proxy config (YAML) for the two deployments on the upstream at `upstream_port`."""
    models = []
    for model, prefix, cost_in, cost_out in DEPLOYMENTS:
        models.append(
            f"""  - model_name: {PUBLIC_MODEL}
    litellm_params:
      model: {model}
      api_base: http://127.0.0.1:{upstream_port}{prefix}
      api_key: dummy-key
    model_info:
      mode: chat
      input_cost_per_token: {cost_in:g}
      output_cost_per_token: {cost_out:g}
"""
        )
    return (
        "model_list:\n"
        + "".join(models)
        + """
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 0

litellm_settings:
  callbacks: []
  success_callback: []
  failure_callback: []
  cache: false
  num_retries: 0
  request_timeout: 30
  set_verbose: false
  json_logs: false

general_settings:
  # No master key, so clients need no auth (as with the Envoy filter). This LiteLLM refuses to
  # start without one unless told that is intended; it is, on 127.0.0.1 only.
  dangerously_permit_weak_or_unset_master_key: true
  disable_spend_logs: true
  disable_error_logs: true
  disable_spend_updates: true
  disable_reset_budget: true
  background_health_checks: false
  disable_model_info_refresh: true
"""
    )


class LiteLLMProxy:
    """One LiteLLM proxy process (one uvicorn worker) in front of the two-deployment upstream."""

    def __init__(self, workdir: Path, port: int, upstream_port: int):
        self.workdir = Path(workdir)
        self.port = port
        self.upstream_port = upstream_port
        self.config_path = self.workdir / "litellm_config.yaml"
        self.log_path = self.workdir / "litellm.log"
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        return [
            str(VENV / "bin" / "litellm"),
            "--config",
            str(self.config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--num_workers",
            "1",
        ]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
        # The harness's own venv must not leak into LiteLLM's interpreter.
        env.pop("VIRTUAL_ENV", None)
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        env.update(_ENV)
        return env

    def start(self, timeout: float = 120.0) -> "LiteLLMProxy":
        if self.proc is not None:
            raise RuntimeError("LiteLLMProxy already started")
        _require_venv()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config_yaml(self.upstream_port))
        self._log = open(self.log_path, "wb")
        began = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches every child
        )
        deadline = began + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(
                    f"LiteLLM proxy exited with code {code} during start-up "
                    f"({' '.join(self.command())}); log tail:\n{tail}"
                )
            if self._answers():
                self.startup_seconds = time.monotonic() - began
                return self
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(
                    f"LiteLLM proxy did not answer on {self.url}/health/liveliness within "
                    f"{timeout:.0f}s; log tail:\n{tail}"
                )
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health/liveliness", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            # Whatever is left in the group (the leader or any child) goes now.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "LiteLLMProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def chat(url: str, body: dict, timeout: float = 30.0) -> dict:
    """POST `body` to `url`/v1/chat/completions and return the decoded JSON answer."""
    req = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


# The answer the harness's Envoy direct_response upstream gives; the self-check serves the same.
UPSTREAM_ANSWER = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":0,"model":"bench",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
)


def _self_check(requests: int) -> int:
    """Start a stdlib upstream and the proxy, send `requests` chat calls, report the paths."""
    import collections
    import tempfile
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: collections.Counter = collections.Counter()
    lock = threading.Lock()

    class Upstream(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                seen[self.path] += 1
            # One write, so no Nagle/delayed-ACK stall between head and body.
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(UPSTREAM_ANSWER), UPSTREAM_ANSWER)
            )

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.daemon_threads = True
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    probe = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)  # only to pick a free port
    port = probe.server_address[1]
    probe.server_close()
    print(f"LiteLLM {peer_version()} in {VENV}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            with LiteLLMProxy(Path(tmp), port, upstream.server_address[1]) as peer:
                print(f"proxy answered on {peer.url} after {peer.startup_seconds:.1f}s")
                body = {"model": PUBLIC_MODEL, "messages": [{"role": "user", "content": "hi"}]}
                began = time.monotonic()
                for _ in range(requests):
                    answer = chat(peer.url, body)
                    assert answer["choices"][0]["message"]["content"] == "ok", answer
                took = time.monotonic() - began
                each = took / requests * 1000
                print(f"{requests} sequential requests in {took:.2f}s ({each:.1f} ms each)")
    finally:
        upstream.shutdown()
    print("upstream saw:", dict(seen))
    wanted = {f"{prefix}/chat/completions" for _, prefix, _, _ in DEPLOYMENTS}
    if set(seen) != wanted or sum(seen.values()) != requests:
        print(f"FAIL: expected all {requests} requests spread over {sorted(wanted)}")
        return 1
    print("ok: both deployments used")
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=_self_check.__doc__)
    parser.add_argument("--requests", type=int, default=40)
    raise SystemExit(_self_check(parser.parse_args().requests))
