#!/usr/bin/env python3
"""An OpenAI-style mock LLM provider for the end-to-end tests and `make run`.

    python scripts/mock_provider.py NAME PORT

Any POST answers 200 with a chat completion that names the provider, echoes the body's `model`,
and describes exactly what arrived (length, Content-Length, chunked, sha256, the routing headers,
the path), so a test can check the filter's rewrite byte for byte. GET /healthz answers 200; any
other GET answers like a POST (so a body-less GET through the gateway shows who answered).
"""
import hashlib
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROUTING_HEADERS = ("x-selected-provider", "x-rewrite-target-model")


def read_chunked(stream):
    """Reads a chunked request body (RFC 9112 §7.1); trailers are read and dropped."""
    body = bytearray()
    while True:
        size_line = stream.readline(65537)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while stream.readline(65537).strip():
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline(3)  # the CRLF after each chunk


def body_model(body):
    """The top-level `model` of a JSON object body, else None."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value.get("model") if isinstance(value, dict) else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-provider"

    def log_message(self, *args):  # quiet: the tests read answers, not access logs
        pass

    def _read_body(self):
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked:
            return read_chunked(self.rfile), chunked
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length), chunked

    def _answer(self):
        body, chunked = self._read_body()
        name = self.server.provider_name
        content_length = self.headers.get("Content-Length")
        answer = {
            "id": "mock-" + uuid.uuid4().hex[:12],
            "object": "chat.completion",
            "provider": name,
            "model": body_model(body),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "hello from " + name},
                "finish_reason": "stop",
            }],
            "received": {
                "length": len(body),
                "content_length": int(content_length) if content_length is not None else None,
                "chunked": chunked,
                "sha256": hashlib.sha256(body).hexdigest(),
                "headers": {h: self.headers.get(h) for h in ROUTING_HEADERS},
                # How many times each arrived: a client's copy left beside the filter's shows.
                "header_counts": {h: len(self.headers.get_all(h) or []) for h in ROUTING_HEADERS},
                "path": self.path,
            },
        }
        self._send(200, json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode())

    def _send(self, status, payload):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-mock-provider", self.server.provider_name)
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        self._answer()

    do_PUT = do_POST

    def do_GET(self):
        if self.path == "/healthz":
            self._send(200, b'{"ok":true}')
        else:
            self._answer()


def make_server(name, port=0, host="127.0.0.1"):
    """A bound server (port 0 picks a free one: read it from `server.server_address[1]`)."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.provider_name = name
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
