"""A fault-injecting OpenAI-compatible server on 127.0.0.1 (stdlib http.server in a thread).

The mode is the first path segment of the base URL, so one server serves every fault at once:
`FaultServer.url("hang")` -> http://127.0.0.1:PORT/hang/v1. Every request is recorded (mode, time,
headers, JSON body), so tests can count retries and check what was sent.

Modes:
  ok         a normal streamed reply (SSE chunks, finish_reason "stop", [DONE])
  hang       accepts the request and never answers (until the server stops)
  stall      sends the headers and a first chunk of text, then nothing
  429        HTTP 429 with `retry-after: 1`
  500        HTTP 500
  cut        a few chunks of text, then a clean end of stream without finish_reason or [DONE]
  cut-abort  a few chunks of text, then the connection closes in the middle of a chunk
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PARTIAL = "Hello, I am so sorry that PARTIAL-MARKER-"
OK_REPLY = [
    "Hello,\n\nI'm sorry your jacket arrived with a torn sleeve. ",
    "We will resolve this within 3 business days.\n\n",
    "Kind regards,\nFernway Outfitters Support",
]
MODES = ("ok", "hang", "stall", "429", "500", "cut", "cut-abort")


def _chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": 0, "model": "fault-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class FaultServer:
    def __init__(self, retry_after: str = "1"):
        self.requests: list[dict[str, Any]] = []
        self.retry_after = retry_after
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # /v1/models, for completeness
                self._json(200, {"object": "list", "data": [{"id": "fault-model", "object": "model"}]})

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                mode = self.path.strip("/").split("/", 1)[0]
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.requests.append({"mode": mode, "path": self.path, "t": time.monotonic(),
                                            "headers": dict(self.headers), "body": body})
                getattr(self, "mode_" + mode.replace("-", "_"), self.mode_unknown)()

            # --- helpers ---------------------------------------------------------------------------
            def _json(self, status: int, obj: dict, headers: dict | None = None):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("connection", "close")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            def _stream_headers(self):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.send_header("connection", "close")
                self.end_headers()

            def _send(self, data: bytes):
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _end(self):
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True

            # --- modes -----------------------------------------------------------------------------
            def mode_ok(self):
                self._stream_headers()
                for piece in OK_REPLY:
                    self._send(_chunk(piece))
                self._send(_chunk(None, "stop"))
                self._send(b"data: [DONE]\n\n")
                self._end()

            def mode_hang(self):
                server.stopping.wait(30)
                self.close_connection = True

            def mode_stall(self):
                self._stream_headers()
                self._send(_chunk(PARTIAL))
                server.stopping.wait(30)
                self.close_connection = True

            def mode_429(self):
                self._json(429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}},
                           {"retry-after": server.retry_after})

            def mode_500(self):
                self._json(500, {"error": {"message": "internal failure", "type": "server_error"}})

            def mode_cut(self):
                self._stream_headers()
                self._send(_chunk(PARTIAL))
                self._send(_chunk("more text"))
                self._end()  # a clean end of the HTTP body, but no finish_reason and no [DONE]

            def mode_cut_abort(self):
                self._stream_headers()
                self._send(_chunk(PARTIAL))
                self.wfile.write(b"400\r\ndata: {\"choi")  # a chunk announced as 1024 bytes, cut short
                self.wfile.flush()
                self.close_connection = True

            def mode_unknown(self):
                self._json(404, {"error": {"message": f"unknown fault mode in {self.path}"}})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-server", daemon=True)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def count(self, mode: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r["mode"] == mode)

    def of(self, mode: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["mode"] == mode]

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
