#!/usr/bin/env python3
"""An OpenAI-compatible mock LLM provider for the end-to-end tests and `make run`.

    python scripts/mock_provider.py NAME PORT

Any POST (or PUT) answers 200 with a chat completion that names the provider, echoes the body's
`model`, and describes exactly what arrived, so a test can check the filter's rewrite byte for
byte:

    {"id", "object": "chat.completion", "created", "provider": NAME, "model": the body's model,
     "choices": [{"index": 0, "message": {"role": "assistant", "content"}, "finish_reason":
     "stop"}], "usage": {"prompt_tokens", "completion_tokens", "total_tokens"},
     "received": {"length", "content_length", "chunked", "sha256", "headers" (the routing
     headers), "credentials" (Authorization, X-Api-Key), "header_counts", "path"}}

The content is one piece per completion token: `NAME-1 NAME-2 … NAME-<completion_tokens>`.
The usage is deterministic: prompt_tokens = the whitespace-separated words (Python str.split)
of every message's content (a string, or each content part's `text`) and of a string `prompt`,
at least 1 (`你好` is 1); completion_tokens = the state's `completion_tokens`; total_tokens =
their sum.

A POST whose JSON body has `"stream": true` is answered in OpenAI's streaming format instead:
200, `text/event-stream; charset=utf-8`, HTTP/1.1 chunked, each event written to the socket as
it is made. The head goes at once; then, after first_token_delay_ms, these events (`data: `,
the JSON, a blank line), each a chunk {"id", "object": "chat.completion.chunk", "created",
"model": the body's model, "provider": NAME, "choices": [...]}:

    1. choices [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason":
       null}], plus "received" (as above): sent with the first token, as vLLM does, so the
       first body byte is the time to first token
    2. one event per completion token, `chunk_delay_ms` apart: delta {"content": piece}, the
       pieces of the content above (concatenated, they are the non-streaming content)
    3. delta {}, "finish_reason": "stop"
    4. only with `"stream_options": {"include_usage": true}`: "choices": [] and "usage" (the
       same numbers as the non-streaming answer's)
    5. `data: [DONE]`

A request the mock refuses (refused_tokens, rate limit, answer_status below) gets the same JSON
error whether it asked for a stream or not, as OpenAI does.

GET /healthz answers 200; any other GET answers like a POST (so a body-less GET through the
gateway shows who answered; never streamed), except:

    GET  /v1/models      (any query) OpenAI's model list, {"object": "list", "data": [{"id":
                         model_name, "object": "model", "created": the mock's start, "owned_by":
                         NAME}], "provider", "received"}, once it passes every check a POST
                         passes (a probe of a failing provider fails; it counts against the
                         rate-limit budget); no usage
    GET  /metrics        the engine's load as vLLM shows it (Prometheus text), for the filter's
                         `load_source: engine_metrics` scrape
    GET  /_mock/state    what the mock pretends and what it saw: the settable values below, and
                         `serving` (answers in progress now), `requests` (answers begun since
                         start), `scrapes` (GET /metrics served), `streams` (streamed answers
                         begun since start) and `usage` ({"prompt_tokens", "completion_tokens",
                         "total_tokens", "answers"}: the usage objects it sent since start,
                         summed, and how many: every 200 chat completion, and each stream with
                         include_usage (a stream without it reports nothing). Counted just before
                         the usage is sent, so a client that read it finds it counted. These
                         counts stay on reset, as Envoy's counters stay, so that a test can
                         compare the gateway's token counters with them)
    POST /_mock/state    sets some of: running, waiting (requests, shown on /metrics),
                         kv_cache_usage (0-1), prefix_cache_queries, prefix_cache_hits (tokens,
                         cumulative counters), model_name (the metrics' label and the model
                         GET /v1/models lists), delay_ms (how long every later answer waits
                         before it is sent, errors included: a slow provider),
                         first_token_delay_ms (a 200 chat answer's wait after delay_ms: a
                         stream sends its head, then waits this before its first event; a
                         non-streaming answer waits it before it is sent), chunk_delay_ms (a
                         stream's wait between two content events), completion_tokens (1 to
                         10000, default 5: content pieces per answer, and the usage's
                         completion_tokens), metrics_status (the status GET /metrics answers:
                         500 is a broken exporter), answer_status (the status every answer,
                         probes of /v1/models included, carries: 503 is a failing provider;
                         errors come in OpenAI's error format), retry_after_s (a Retry-After
                         header on failing answers; 0 sends none), refused_tokens (API keys
                         this provider refuses: an answer whose Authorization (`Bearer <key>` or
                         the bare key) or X-Api-Key carries one is a 401, before
                         answer_status), rate_limit_requests (null: unlimited, no rate-limit
                         headers; a number: the requests each window allows, counted down by
                         every answer that gets past refused_tokens (GETs and streams
                         included), whose rate-limit headers (a stream's head too) tell what is
                         left; at 0 the answer is a 429 with the headers, before
                         answer_status), rate_limit_reset_s (the window's length, from its
                         first request: the budget refills then), rate_limit_style (the
                         headers: `openai`, x-ratelimit-*-requests with a Go duration, or
                         `anthropic`, anthropic-ratelimit-requests-* with an RFC 3339 time),
                         rate_limit_per_key (true: one budget per API key, as providers count
                         them; false: one for the provider); setting any rate_limit_ field
                         starts the budgets afresh. The delays are at most 60000 ms. Answers
                         the new state. An unknown field or a bad value answers 400, changing
                         nothing.
    POST /_mock/reset    back to the starting values (the counters of what it saw stay)
    GET  /_mock/received the requests it answered, oldest first (the last 200), each exactly
                         as it arrived: method, path, every header line in order (repeats
                         included), the body's bytes (base64), whether it came chunked, and
                         the chunked trailers: {"total": answered since start or forget,
                         "requests": [{"seq", "method", "path", "headers": [[name, value]],
                         "body_base64", "chunked", "trailers": [[name, value]]}]}
    POST /_mock/forget   forgets those requests (and restarts `total` and `seq` at 0)
"""
import base64
import collections
import hashlib
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ROUTING_HEADERS = ("x-selected-provider", "x-rewrite-target-model")
TOKEN_HEADERS = ("authorization", "x-api-key")
STATE_PATH = "/_mock/state"
RESET_PATH = "/_mock/reset"
RECEIVED_PATH = "/_mock/received"
FORGET_PATH = "/_mock/forget"
MAX_RECORDED = 200  # requests kept for GET /_mock/received
METRICS_PATH = "/metrics"
MODELS_PATH = "/v1/models"
# The end-to-end latency histogram's buckets (seconds), a subset of vLLM's own.
LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 20.0)
MAX_DELAY_MS = 60_000
DELAY_FIELDS = ("delay_ms", "first_token_delay_ms", "chunk_delay_ms")
MAX_COMPLETION_TOKENS = 10_000
STARTED = int(time.time())  # the `created` of the model GET /v1/models lists


def starting_state(name):
    """What a fresh mock pretends: an idle engine that answers at once."""
    return {"running": 0, "waiting": 0, "kv_cache_usage": 0.0, "prefix_cache_queries": 0,
            "prefix_cache_hits": 0, "model_name": name, "delay_ms": 0, "metrics_status": 200,
            "answer_status": 200, "retry_after_s": 0, "refused_tokens": [],
            "rate_limit_requests": None, "rate_limit_reset_s": 60, "rate_limit_style": "openai",
            "rate_limit_per_key": False, "first_token_delay_ms": 0, "chunk_delay_ms": 0,
            "completion_tokens": 5}
RATE_LIMIT_STYLES = ("openai", "anthropic")


def checked_update(update, current):
    """The state after `update` (a JSON object), or raises ValueError naming the bad field."""
    if not isinstance(update, dict):
        raise ValueError("the body must be a JSON object")
    state = dict(current)
    for key, value in update.items():
        if key not in state:
            raise ValueError(f"unknown field {key!r}; settable: {', '.join(sorted(state))}")
        if key == "model_name":
            if not isinstance(value, str) or not value or '"' in value or "\\" in value:
                raise ValueError("model_name must be a non-empty string without quotes")
        elif key == "refused_tokens":
            if not isinstance(value, list) or not all(
                    isinstance(token, str) and token for token in value):
                raise ValueError(f"refused_tokens must be a list of non-empty strings, "
                                 f"got {value!r}")
            value = list(value)
        elif key == "rate_limit_requests":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise ValueError(f"rate_limit_requests must be null or a whole number >= 0, "
                                 f"got {value!r}")
        elif key == "rate_limit_style":
            if value not in RATE_LIMIT_STYLES:
                raise ValueError(f"rate_limit_style must be one of {RATE_LIMIT_STYLES}, "
                                 f"got {value!r}")
        elif key == "rate_limit_per_key":
            if not isinstance(value, bool):
                raise ValueError(f"rate_limit_per_key must be true or false, got {value!r}")
        elif key == "completion_tokens":
            if (isinstance(value, bool) or not isinstance(value, int)
                    or not 1 <= value <= MAX_COMPLETION_TOKENS):
                raise ValueError(f"completion_tokens must be a whole number from 1 to "
                                 f"{MAX_COMPLETION_TOKENS}, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{key} must be a number >= 0, got {value!r}")
        elif key == "kv_cache_usage" and value > 1:
            raise ValueError(f"kv_cache_usage is a share from 0 to 1, got {value!r}")
        elif key == "rate_limit_reset_s" and value <= 0:
            raise ValueError(f"rate_limit_reset_s must be above 0, got {value!r}")
        elif key in DELAY_FIELDS and value > MAX_DELAY_MS:
            raise ValueError(f"{key} above {MAX_DELAY_MS}")
        elif key in ("metrics_status", "answer_status") and (
                not isinstance(value, int) or not 200 <= value <= 599):
            raise ValueError(f"{key} must be an HTTP status, got {value!r}")
        state[key] = value
    return state


class Engine:
    """The pretend engine behind one mock: settable figures and what it has served, guarded by
    one lock because every request runs in its own thread."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.state = starting_state(name)
        self.serving = 0
        self.requests = 0
        self.scrapes = 0
        # The latency histogram: answers per bucket (cumulative as Prometheus shows them later),
        # their count and total seconds.
        self.in_bucket = [0] * len(LATENCY_BUCKETS)
        self.answered = 0
        self.seconds_total = 0.0
        self.recorded = collections.deque(maxlen=MAX_RECORDED)
        self.recorded_total = 0
        # Rate-limit windows: budget key -> [requests left, when the window ends (monotonic)].
        self.windows = {}
        # What the answers told clients: streams begun, and the usage they carried, summed.
        self.streams = 0
        self.usage_sent = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                           "answers": 0}

    def begin(self):
        """An answer starts: counts it, and returns the delay it must wait (seconds)."""
        with self.lock:
            self.serving += 1
            self.requests += 1
            return self.state["delay_ms"] / 1000

    def end(self, seconds):
        with self.lock:
            self.serving -= 1
            self.answered += 1
            self.seconds_total += seconds
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.in_bucket[index] += 1

    def settings(self):
        """A copy of the settable state, for one answer to follow throughout."""
        with self.lock:
            return dict(self.state)

    def count_stream(self):
        with self.lock:
            self.streams += 1

    def count_usage(self, usage):
        """Adds the usage an answer is about to carry (counted before it is sent, so that a
        client that has read it finds it counted)."""
        with self.lock:
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                self.usage_sent[key] += usage[key]
            self.usage_sent["answers"] += 1

    def record(self, request):
        """Keeps what one request brought (a dict, see GET /_mock/received)."""
        with self.lock:
            self.recorded_total += 1
            self.recorded.append({"seq": self.recorded_total, **request})

    def received(self):
        with self.lock:
            return {"total": self.recorded_total, "requests": list(self.recorded)}

    def forget(self):
        with self.lock:
            self.recorded.clear()
            self.recorded_total = 0
            return {"total": 0, "requests": []}

    def set(self, update):
        with self.lock:
            self.state = checked_update(update, self.state)
            if any(key.startswith("rate_limit_") for key in update):
                self.windows = {}

    def reset(self):
        with self.lock:
            self.state = starting_state(self.name)
            self.windows = {}

    def take_request(self, key):
        """Counts one request against the budget of `key` (an API key, or None): None when no
        budget is set, else (allowed, left after it, limit, seconds until the window ends)."""
        with self.lock:
            limit = self.state["rate_limit_requests"]
            if limit is None:
                return None
            if not self.state["rate_limit_per_key"]:
                key = None
            now = time.monotonic()
            window = self.windows.get(key)
            if window is None or now >= window[1]:
                window = self.windows[key] = [limit, now + self.state["rate_limit_reset_s"]]
            allowed = window[0] > 0
            if allowed:
                window[0] -= 1
            return allowed, window[0], limit, window[1] - now

    def report(self):
        with self.lock:
            return {**self.state, "serving": self.serving, "requests": self.requests,
                    "scrapes": self.scrapes, "streams": self.streams,
                    "usage": dict(self.usage_sent)}

    def metrics_page(self):
        """(status, the figures in vLLM's Prometheus text format: names and labels of vLLM
        0.10); a status other than 200 comes with an error text instead."""
        with self.lock:
            self.scrapes += 1
            state, in_bucket = dict(self.state), list(self.in_bucket)
            if state["metrics_status"] != 200:
                return state["metrics_status"], b"exporter failure\n"
            answered, seconds_total = self.answered, self.seconds_total
        labels = f'engine="0",model_name="{state["model_name"]}"'
        lines = []

        def metric(name, kind, help_text, samples):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)

        def sample(name, value, extra=""):
            return f"{name}{{{labels}{extra}}} {float(value)!r}"

        metric("vllm:num_requests_running", "gauge",
               "Number of requests in model execution batches.",
               [sample("vllm:num_requests_running", state["running"])])
        metric("vllm:num_requests_waiting", "gauge",
               "Number of requests waiting to be processed.",
               [sample("vllm:num_requests_waiting", state["waiting"])])
        metric("vllm:kv_cache_usage_perc", "gauge",
               "KV-cache usage. 1 means 100 percent usage.",
               [sample("vllm:kv_cache_usage_perc", state["kv_cache_usage"])])
        metric("vllm:prefix_cache_queries_total", "counter",
               "Prefix cache queries, in terms of number of queried tokens.",
               [sample("vllm:prefix_cache_queries_total", state["prefix_cache_queries"])])
        metric("vllm:prefix_cache_hits_total", "counter",
               "Prefix cache hits, in terms of number of cached tokens.",
               [sample("vllm:prefix_cache_hits_total", state["prefix_cache_hits"])])
        buckets = [sample("vllm:e2e_request_latency_seconds_bucket", count, f',le="{bound!r}"')
                   for bound, count in zip(LATENCY_BUCKETS, in_bucket)]
        buckets.append(sample("vllm:e2e_request_latency_seconds_bucket", answered, ',le="+Inf"'))
        buckets.append(sample("vllm:e2e_request_latency_seconds_sum", seconds_total))
        buckets.append(sample("vllm:e2e_request_latency_seconds_count", answered))
        metric("vllm:e2e_request_latency_seconds", "histogram",
               "Histogram of e2e request latency in seconds.", buckets)
        metric("vllm:request_success_total", "counter", "Count of successfully processed requests.",
               [sample("vllm:request_success_total", answered, ',finished_reason="stop"')])
        return 200, ("\n".join(lines) + "\n").encode()


def read_chunked(stream):
    """Reads a chunked request body (RFC 9112 §7.1): (body bytes, trailer [name, value] pairs
    in order)."""
    body = bytearray()
    while True:
        size_line = stream.readline(65537)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            return bytes(body), read_trailers(stream)
        body += stream.read(size)
        stream.readline(3)  # the CRLF after each chunk


def read_trailers(stream):
    """The trailer section after the last chunk, up to its blank line."""
    trailers = []
    while line := stream.readline(65537).strip():
        name, _, value = line.decode("iso-8859-1").partition(":")
        trailers.append([name.strip(), value.strip()])
    return trailers


def json_object(body):
    """The body as a JSON object (a dict), else an empty dict."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def body_model(body):
    """The top-level `model` of a JSON object body, else None."""
    return json_object(body).get("model")


def prompt_tokens(request):
    """The prompt's size in the mock's tokens: whitespace-separated words (Python's
    str.split) in every message's content (a string, or the `text` of each content part) and
    in a string `prompt`; at least 1."""
    texts = []
    messages = request.get("messages")
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(part["text"] for part in content
                         if isinstance(part, dict) and isinstance(part.get("text"), str))
    if isinstance(request.get("prompt"), str):
        texts.append(request["prompt"])
    return max(1, sum(len(text.split()) for text in texts))


def usage_of(request, completion_tokens):
    prompt = prompt_tokens(request)
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens}


def content_pieces(name, count):
    """What an answer says, one piece per completion token: `NAME-1`, ` NAME-2`, …"""
    return [("" if index == 1 else " ") + f"{name}-{index}" for index in range(1, count + 1)]


def sse_event(value):
    """One server-sent event carrying `value` as JSON, as OpenAI streams chunks."""
    return b"data: " + json.dumps(value, separators=(",", ":")).encode() + b"\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-provider"

    def log_message(self, *args):  # quiet: the tests read answers, not access logs
        pass

    def _read_body(self):
        """(body bytes, whether it came chunked, its trailers)."""
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked:
            body, trailers = read_chunked(self.rfile)
            return body, chunked, trailers
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length), chunked, []

    def _record(self, body, chunked, trailers):
        """Keeps the request exactly as it arrived, for GET /_mock/received."""
        self.server.engine.record({
            "method": self.command,
            "path": self.path,
            "headers": [[name, value] for name, value in self.headers.items()],
            "body_base64": base64.b64encode(body).decode(),
            "chunked": chunked,
            "trailers": trailers,
        })

    def _answer(self):
        engine = self.server.engine
        started = time.monotonic()
        delay_s = engine.begin()
        try:
            self._answer_after(delay_s)
        finally:
            engine.end(time.monotonic() - started)

    def _answer_after(self, delay_s):
        body, chunked, trailers = self._read_body()
        self._record(body, chunked, trailers)
        if delay_s:
            time.sleep(delay_s)
        name = self.server.provider_name
        settings = self.server.engine.settings()
        status = settings["answer_status"]
        retry_after_s = settings["retry_after_s"]
        if self._carries_one_of(settings["refused_tokens"]):
            error = {"error": {"message": f"{name} refuses this API key", "type":
                               "invalid_request_error", "code": "invalid_api_key"},
                     "provider": name}
            return self._send(401, json.dumps(error).encode())
        budget = self.server.engine.take_request(self._api_key())
        limit_headers = self._rate_limit_headers(budget) if budget else {}
        if budget and not budget[0]:
            error = {"error": {"message": f"{name}: rate limit reached", "type": "requests",
                               "code": "rate_limit_exceeded"}, "provider": name}
            if retry_after_s:
                limit_headers["Retry-After"] = str(retry_after_s)
            return self._send(429, json.dumps(error).encode(), extra_headers=limit_headers)
        if status != 200:
            error = {"error": {"message": f"{name} is failing on purpose", "type": "mock_failure",
                               "code": status}, "provider": name}
            extra = {"Retry-After": str(retry_after_s)} if retry_after_s else {}
            return self._send(status, json.dumps(error).encode(), extra_headers=extra)
        received = self._description(body, chunked)
        if self.command == "GET" and urlsplit(self.path).path == MODELS_PATH:
            listing = {"object": "list", "data": [{
                "id": settings["model_name"], "object": "model", "created": STARTED,
                "owned_by": name}], "provider": name, "received": received}
            return self._send_json(200, listing, extra_headers=limit_headers)
        request = json_object(body)
        usage = usage_of(request, settings["completion_tokens"])
        pieces = content_pieces(name, settings["completion_tokens"])
        first_token_s = settings["first_token_delay_ms"] / 1000
        if self.command != "GET" and request.get("stream") is True:
            options = request.get("stream_options")
            with_usage = isinstance(options, dict) and options.get("include_usage") is True
            return self._stream(request.get("model"), received, pieces,
                                usage if with_usage else None, limit_headers, first_token_s,
                                settings["chunk_delay_ms"] / 1000)
        if first_token_s:
            time.sleep(first_token_s)
        answer = {
            "id": "mock-" + uuid.uuid4().hex[:12],
            "object": "chat.completion",
            "created": int(time.time()),
            "provider": name,
            "model": request.get("model"),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces)},
                "finish_reason": "stop",
            }],
            "usage": usage,
            "received": received,
        }
        self.server.engine.count_usage(usage)
        self._send_json(200, answer, extra_headers=limit_headers, ensure_ascii=False)

    def _description(self, body, chunked):
        """What arrived, as every 200 answer shows it (`received`)."""
        content_length = self.headers.get("Content-Length")
        return {
            "length": len(body),
            "content_length": int(content_length) if content_length is not None else None,
            "chunked": chunked,
            "sha256": hashlib.sha256(body).hexdigest(),
            "headers": {h: self.headers.get(h) for h in ROUTING_HEADERS},
            # The API-key headers as they arrived (a fake key pool's tokens are not secret).
            "credentials": {h: self.headers.get(h) for h in TOKEN_HEADERS},
            # How many times each arrived: a client's copy left beside the filter's shows.
            "header_counts": {h: len(self.headers.get_all(h) or []) for h in ROUTING_HEADERS},
            "path": self.path,
        }

    def _stream(self, model, received, pieces, usage, limit_headers, first_token_s, chunk_s):
        """A 200 in OpenAI's chat.completion.chunk events (server-sent events, HTTP/1.1
        chunked), each written to the socket as it is made: the head at once, then after
        `first_token_s` the role event (as vLLM sends it with the first token, so the first
        body byte is the first token) and one event per piece, `chunk_s` apart, the finish
        event, the usage event when `usage` is given, and `data: [DONE]`."""
        name = self.server.provider_name
        self.server.engine.count_stream()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        for header, value in limit_headers.items():
            self.send_header(header, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-mock-provider", name)
        self.end_headers()
        base = {"id": "mock-" + uuid.uuid4().hex[:12], "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model, "provider": name}

        def choice(delta, finish_reason=None):
            return {**base, "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        try:
            time.sleep(first_token_s)
            self._send_chunk(sse_event({**choice({"role": "assistant", "content": ""}),
                                        "received": received}))
            for index, piece in enumerate(pieces):
                if index:
                    time.sleep(chunk_s)
                self._send_chunk(sse_event(choice({"content": piece})))
            self._send_chunk(sse_event(choice({}, "stop")))
            if usage is not None:
                self.server.engine.count_usage(usage)
                self._send_chunk(sse_event({**base, "choices": [], "usage": usage}))
            self._send_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client (the gateway) went away mid-stream
            self.close_connection = True

    def _send_chunk(self, data):
        """One HTTP/1.1 chunk, written at once (wfile is unbuffered)."""
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def _api_key(self):
        """The API key the request carries (Authorization's bearer token, or X-Api-Key)."""
        for header in TOKEN_HEADERS:
            value = self.headers.get(header)
            if value:
                return value[len("Bearer "):] if value.startswith("Bearer ") else value
        return None

    def _rate_limit_headers(self, budget):
        """The headers that tell what is left of a budget, in the configured style."""
        _, left, limit, reset_in_s = budget
        with self.server.engine.lock:
            style = self.server.engine.state["rate_limit_style"]
        if style == "anthropic":
            # Whole seconds, rounded up: a client told too early would meet the 429.
            reset_at = time.gmtime(time.time() + reset_in_s + 0.999)
            return {"anthropic-ratelimit-requests-limit": str(limit),
                    "anthropic-ratelimit-requests-remaining": str(left),
                    "anthropic-ratelimit-requests-reset":
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", reset_at)}
        return {"x-ratelimit-limit-requests": str(limit),
                "x-ratelimit-remaining-requests": str(left),
                "x-ratelimit-reset-requests": f"{reset_in_s:.3f}s"}

    def _carries_one_of(self, tokens):
        """Whether the request's API-key headers carry one of `tokens`."""
        for header in TOKEN_HEADERS:
            for value in self.headers.get_all(header) or []:
                key = value[len("Bearer "):] if value.startswith("Bearer ") else value
                if key in tokens:
                    return True
        return False

    def _send(self, status, payload, content_type="application/json", extra_headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for header, value in (extra_headers or {}).items():
            self.send_header(header, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-mock-provider", self.server.provider_name)
        # Head and body in one write: a mock killed by a load run between two writes would
        # leave a 200 without its body, which no gateway can retry once the head went on (a
        # real provider's crash mid-answer is not what those runs measure).
        self._headers_buffer.append(b"\r\n" + payload)
        self.flush_headers()

    def _send_json(self, status, value, extra_headers=None, ensure_ascii=True):
        payload = json.dumps(value, ensure_ascii=ensure_ascii, separators=(",", ":")).encode()
        self._send(status, payload, extra_headers=extra_headers)

    def _control(self):
        """POST /_mock/state, /_mock/reset and /_mock/forget: change what the mock pretends,
        or forget what it received."""
        body, _, _ = self._read_body()
        engine = self.server.engine
        if self.path == FORGET_PATH:
            return self._send_json(200, engine.forget())
        if self.path == RESET_PATH:
            engine.reset()
            return self._send_json(200, engine.report())
        try:
            engine.set(json.loads(body or b"{}"))
        except ValueError as err:  # json.JSONDecodeError is a ValueError too
            return self._send_json(400, {"error": str(err)})
        self._send_json(200, engine.report())

    def do_POST(self):
        if self.path in (STATE_PATH, RESET_PATH, FORGET_PATH):
            self._control()
        else:
            self._answer()

    do_PUT = do_POST

    def do_GET(self):
        if self.path == "/healthz":
            self._send(200, b'{"ok":true}')
        elif self.path == METRICS_PATH:
            status, page = self.server.engine.metrics_page()
            self._send(status, page, "text/plain; version=0.0.4; charset=utf-8")
        elif self.path == STATE_PATH:
            self._send_json(200, self.server.engine.report())
        elif self.path == RECEIVED_PATH:
            self._send_json(200, self.server.engine.received())
        else:
            self._answer()


class Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of new connections from the gateway
    # (dozens of clients at once) would overflow it, the kernel would drop their SYNs, and
    # Envoy would see connect timeouts that no real provider would cause.
    request_queue_size = 128
    daemon_threads = True


def make_server(name, port=0, host="127.0.0.1"):
    """A bound server (port 0 picks a free one: read it from `server.server_address[1]`)."""
    server = Server((host, port), Handler)
    server.provider_name = name
    server.engine = Engine(name)
    return server


def start_in_thread(name, port=0):
    """Serves in a daemon thread; returns the server (call `.shutdown()` to stop it)."""
    server = make_server(name, port)
    threading.Thread(target=server.serve_forever, name="mock-" + name, daemon=True).start()
    return server


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: mock_provider.py NAME PORT")
    server = make_server(argv[1], int(argv[2]))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv)
