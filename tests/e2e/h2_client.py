"""A small HTTP/2 client over cleartext TCP (h2c with prior knowledge, which Envoy's listener
accepts with `codec_type: AUTO`), for what curl cannot send: a request body followed by
request trailers that end the stream. Built on the `h2` package (requirements-dev.txt).
"""
import socket
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

READ_SIZE = 65536


@dataclass
class H2Answer:
    """What came back on the stream: status and headers (names lowercase), body, response
    trailers, and the error code if the stream was reset instead of ending."""
    status: int = 0
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    trailers: dict = field(default_factory=dict)
    reset_code: int = None


def h2_request(port, method, path, headers=(), body=b"", trailers=(), trailers_after_s=0.0,
               timeout_s=10):
    """One request on a new connection to 127.0.0.1:`port`. `headers` and `trailers` are
    ("name", "value") pairs; with `trailers`, they (not the body) end the request stream,
    `trailers_after_s` seconds after the body was sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        stream_id = conn.get_next_available_stream_id()
        request_head = [(":method", method), (":scheme", "http"),
                        (":authority", f"127.0.0.1:{port}"), (":path", path), *headers]
        ends_with_headers = not body and not trailers
        conn.send_headers(stream_id, request_head, end_stream=ends_with_headers)
        answer = H2Answer()
        if body:
            _send_body(sock, conn, stream_id, body, end_stream=not trailers, answer=answer)
        if trailers and trailers_after_s:
            sock.sendall(conn.data_to_send())
            time.sleep(trailers_after_s)
        if trailers:
            conn.send_headers(stream_id, list(trailers), end_stream=True)
        sock.sendall(conn.data_to_send())  # without a pause: every frame in one write
        while not _handle_events(sock, conn, stream_id, answer):
            pass
        return answer


def _send_body(sock, conn, stream_id, body, end_stream, answer):
    """Sends `body` in DATA frames within the peer's flow-control window and frame size."""
    sent = 0
    while sent < len(body):
        room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
        if room == 0:  # wait for a WINDOW_UPDATE
            sock.sendall(conn.data_to_send())
            if _handle_events(sock, conn, stream_id, answer):
                raise AssertionError("the stream ended before its body was sent")
            continue
        chunk = body[sent:sent + room]
        sent += len(chunk)
        conn.send_data(stream_id, chunk, end_stream=end_stream and sent == len(body))


def _handle_events(sock, conn, stream_id, answer):
    """Reads from the socket once and records what it brought into `answer`; True once the
    stream has ended or was reset."""
    data = sock.recv(READ_SIZE)
    if not data:
        raise AssertionError("the gateway closed the connection before the stream ended")
    done = False
    for event in conn.receive_data(data):
        if getattr(event, "stream_id", stream_id) != stream_id:
            continue
        if isinstance(event, h2.events.ResponseReceived):
            answer.headers = _decoded(event.headers)
            answer.status = int(answer.headers[":status"])
        elif isinstance(event, h2.events.DataReceived):
            answer.body += event.data
            conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            answer.trailers = _decoded(event.headers)
        elif isinstance(event, h2.events.StreamReset):
            answer.reset_code = event.error_code
            done = True
        elif isinstance(event, (h2.events.StreamEnded, h2.events.ConnectionTerminated)):
            done = True
    sock.sendall(conn.data_to_send())
    return done


def _decoded(pairs):
    return {_text(name).lower(): _text(value) for name, value in pairs}


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
