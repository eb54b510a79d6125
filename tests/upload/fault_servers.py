"""Small purpose-built fault HTTP servers on 127.0.0.1 for the upload tests.

Each is a probe that answers ``POST .../events`` in one faulty way Meta (or a proxy in front of
it) can: a 200 with text, a 200 with a short count, 413 above a size, a reply trickled a byte at
a time, an error that echoes the request body, a request-level code 100/33. They record every
request (path, headers, body, the number of events in it) and are not an emulator: they know
nothing of events beyond counting them.

    with FaultServer(short_count(1)) as server:
        GraphClient(server.url, "v24.0", "1", token).post_events(payloads)
        server.requests[0].events  # 1
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def fields(self) -> dict[str, Any]:
        """The body's fields, JSON or form-encoded (``data`` parsed as a JSON array)."""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return dict(json.loads(self.body))
        parsed = {k: v[0] for k, v in parse_qs(self.body.decode("ascii")).items()}
        if "data" in parsed:
            parsed["data"] = json.loads(parsed["data"])
        return parsed

    @property
    def events(self) -> int:
        return len(self.fields.get("data", []))


@dataclass
class Reply:
    """What to answer: status, body (bytes, or a JSON-able value), headers, and optionally a
    pause of ``trickle_seconds`` before each byte of the body."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    trickle_seconds: float = 0.0

    def data(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


Responder = Callable[[Request], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        server: FaultServer = self.server  # type: ignore[assignment]
        request = Request(self.path, dict(self.headers.items()),
                          self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with server.lock:
            server.requests.append(request)
        reply = server.respond(request)
        data = reply.data()
        try:
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if reply.trickle_seconds:
                self.wfile.flush()
                for i in range(len(data)):
                    if server.closing.wait(reply.trickle_seconds):
                        return
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
            else:
                self.wfile.write(data)
        except OSError:
            pass  # the client gave up

    def log_message(self, *args: Any) -> None:
        pass


class FaultServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 (a free port) answering with ``respond``."""

    daemon_threads = True

    def __init__(self, respond: Responder) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.respond = respond
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.closing = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> FaultServer:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()


# ----- the probes ---------------------------------------------------------------------------------
def ok_count(request: Request) -> Reply:
    """A correct success reply (capi and legacy counts)."""
    n = request.events
    return Reply(200, {"events_received": n, "num_processed_entries": n, "fbtrace_id": "OK"})


def text_200(text: bytes = b"OK") -> Responder:
    """HTTP 200 with a body that is not JSON (a proxy's or a captive portal's page)."""
    return lambda request: Reply(200, text, {"Content-Type": "text/plain"})


def short_count(missing: int = 1) -> Responder:
    """HTTP 200 whose ``events_received`` / ``num_processed_entries`` is ``missing`` short."""
    def respond(request: Request) -> Reply:
        n = max(request.events - missing, 0)
        return Reply(200, {"events_received": n, "num_processed_entries": n,
                           "fbtrace_id": "SHORT"})
    return respond


def too_large_above(max_events: int) -> Responder:
    """HTTP 413 (as a proxy answers: no Meta error body) for requests of more events."""
    def respond(request: Request) -> Reply:
        if request.events > max_events:
            return Reply(413, b"<html>413 Request Entity Too Large</html>",
                         {"Content-Type": "text/html"})
        return ok_count(request)
    return respond


def trickle(seconds_per_byte: float, body: Any = None) -> Responder:
    """A success reply whose body arrives one byte every ``seconds_per_byte``."""
    def respond(request: Request) -> Reply:
        reply = body if body is not None else {"events_received": request.events,
                                               "padding": "x" * 40}
        return Reply(200, reply, trickle_seconds=seconds_per_byte)
    return respond


def echo_body(status: int = 400, code: int = 12345) -> Responder:
    """An error that quotes the whole request body back (the raw form or JSON text)."""
    def respond(request: Request) -> Reply:
        text = request.body.decode("utf-8", "replace")
        return Reply(status, {"error": {"message": f"Cannot parse request body: {text}",
                                        "type": "GraphMethodException", "code": code,
                                        "fbtrace_id": "ECHO"}})
    return respond


def dataset_missing(request: Request) -> Reply:
    """Meta's request-level 100/33: the dataset id is wrong or the token cannot reach it."""
    set_id = request.path.strip("/").split("/")[1] if request.path.count("/") >= 2 else "?"
    return Reply(400, {"error": {
        "message": (f"Unsupported post request. Object with ID '{set_id}' does not exist, "
                    "cannot be loaded due to missing permissions, or does not support this "
                    "operation. Please read the Graph API documentation at "
                    "https://developers.facebook.com/docs/graph-api"),
        "type": "GraphMethodException", "code": 100, "error_subcode": 33,
        "fbtrace_id": "DS33"}})

