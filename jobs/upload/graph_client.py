"""One pooled HTTP client per upload task for Meta's ``/{set_id}/events`` endpoint (SPEC §5).

The client sends already-serialized events (the JSON text of each element of ``data``, built by
Spark) without parsing them again, and turns every reply, connection error or timeout into an
:class:`ApiResponse`. It never raises for a network problem and never retries: retries belong to
:mod:`jobs.upload.sending`.

The access token (and ``appsecret_proof``, HMAC-SHA256 of the token keyed by the app secret, when
an app secret is configured) travels only in the request body. Neither it nor the app secret is
ever put in the URL, a header, a log line, an exception message, a ``repr`` or an
:class:`ApiResponse`: a reply that echoes them, in any wire encoding, has them replaced by
``[redacted]`` (:mod:`jobs.upload.redaction`).

The whole request (connecting, sending, the status line, headers and body) is bounded by
``timeout`` seconds, not only each socket read: a watchdog cuts the connection of a request that
is still running at its deadline, so a server that trickles its reply cannot hold a request.

Example (against a local server)::

    with GraphClient("http://127.0.0.1:8080", "v26.0", "123", token) as client:
        response = client.post_events(['{"event_name":"Purchase","event_time":1700000000}'])
        response.http_status  # 200
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from jobs.upload.redaction import Redactor

if TYPE_CHECKING:
    from collections.abc import Sequence

    from jobs.config import JobConfig

#: Graph usage headers that may carry ``estimated_time_to_regain_access`` (minutes).
USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-App-Usage", "X-Ad-Account-Usage")
_MAX_MESSAGE = 2000
_MAX_TEXT = 300  # characters of a reply that is not JSON quoted in ``error``


def appsecret_proof(token: str, app_secret: str) -> str:
    """Meta's ``appsecret_proof``: hex HMAC-SHA256 of the token, keyed by the app secret."""
    return hmac.new(app_secret.encode("utf-8"), token.encode("utf-8"),
                    hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ApiResponse:
    """What one request to the events endpoint came back with. Holds no secret.

    ``http_status`` is None when no HTTP reply arrived (connection error, timeout); ``error`` then
    says what happened. The Meta error fields come from ``{"error": {...}}``; ``user_message`` is
    Meta's ``error_user_title``/``error_user_msg`` (often the useful part for an invalid event).
    ``retry_after_seconds`` is Meta's ``estimated_time_to_regain_access`` (minutes, from the
    error's ``error_data`` or the usage headers) or a standard ``Retry-After`` header, in seconds;
    None when absent or zero. ``event_index`` is Meta's ``error_data.event_index`` (the event of
    the request that is invalid), when given. A 2xx reply whose body is not a JSON object has
    ``body`` None and ``error`` quoting its start.
    """

    http_status: int | None
    body: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float = 0.0
    code: int | None = None
    subcode: int | None = None
    message: str | None = None
    fbtrace_id: str | None = None
    is_transient: bool = False
    type: str | None = None
    retry_after_seconds: float | None = None
    user_message: str | None = None
    event_index: int | None = None


class GraphClient:
    """A keep-alive ``requests.Session`` posting event chunks to one event set / dataset.

    Parameters
    ----------
    base_url, api_version, set_id
        The endpoint is ``{base_url}/{api_version}/{set_id}/events``.
    token
        The access token; sent only in the body.
    body_format
        ``"json"`` (``Content-Type: application/json``, ``data`` a JSON array) or ``"form"``
        (urlencoded fields, ``data`` the JSON array as text).
    timeout
        Seconds for the whole request: connecting, sending, and reading the complete reply.
    app_secret
        When given, ``appsecret_proof`` is sent in the body (never the secret itself).
    upload_tag, test_event_code
        Request-level fields, sent when not None.
    pool_size
        Connections kept alive; use the number of requests in flight (``max_in_flight``).

    The client is thread-safe for concurrent :meth:`post_events` calls (one session shared by
    the task's sender threads). It cannot be pickled: build it inside the task.
    """

    def __init__(
        self,
        base_url: str,
        api_version: str,
        set_id: str,
        token: str,
        *,
        body_format: str = "json",
        timeout: float = 60.0,
        upload_tag: str | None = None,
        test_event_code: str | None = None,
        pool_size: int = 4,
        app_secret: str | None = None,
    ) -> None:
        if body_format not in ("json", "form"):
            raise ValueError(f"body_format must be 'json' or 'form', got {body_format!r}")
        if not token:
            raise ValueError("an access token is required")
        self.url = f"{base_url.rstrip('/')}/{api_version}/{set_id}/events"
        self.body_format = body_format
        self.timeout = timeout
        self.upload_tag = upload_tag
        self.test_event_code = test_event_code
        proof = appsecret_proof(token, app_secret) if app_secret else None
        self._redact = Redactor([token, app_secret, proof])
        # Request-level fields that never change, encoded once.
        fields: dict[str, str] = {"access_token": token}
        if proof is not None:
            fields["appsecret_proof"] = proof
        if upload_tag is not None:
            fields["upload_tag"] = upload_tag
        if test_event_code is not None:
            fields["test_event_code"] = test_event_code
        self._form_fields = fields
        self._json_prefix = "{" + "".join(
            f"{json.dumps(k)}:{json.dumps(v)}," for k, v in fields.items()) + '"data":['
        self._content_type = ("application/json" if body_format == "json"
                              else "application/x-www-form-urlencoded")
        session = requests.Session()
        adapter = _WatchedAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "mparticle-meta-backfill"
        self._session = session

    @classmethod
    def from_config(cls, config: JobConfig, token: str, upload_tag: str | None = None,
                    app_secret: str | None = None) -> GraphClient:
        """A client for ``config.upload``; ``upload_tag`` overrides the configured tag."""
        u = config.upload
        return cls(u.base_url, u.api_version, u.set_id or "", token,
                   body_format=u.body_format, timeout=u.timeout_seconds,
                   upload_tag=upload_tag if upload_tag is not None else u.upload_tag,
                   test_event_code=u.test_event_code, pool_size=u.max_in_flight,
                   app_secret=app_secret)

    def redact(self, text: str) -> str:
        """``text`` with every wire form of the token, app secret and proof redacted."""
        return self._redact(text)

    # ----- sending ------------------------------------------------------------------------------
    def encode_body(self, payloads: Sequence[str]) -> bytes:
        """The request body for ``payloads`` (each the JSON text of one event), not re-parsed."""
        try:
            if self.body_format == "json":
                return (self._json_prefix + ",".join(payloads) + "]}").encode("utf-8")
            data = "[" + ",".join(payloads) + "]"
            return urlencode({**self._form_fields, "data": data}).encode("ascii")
        except UnicodeEncodeError:
            # The exception would hold the whole body (token included) in its ``object``.
            raise ValueError("an event payload is not valid Unicode text") from None

    def post_events(self, payloads: Sequence[str]) -> ApiResponse:
        """POST one chunk; never raises for network errors, never retries."""
        body = self.encode_body(payloads)
        headers = {"Content-Type": self._content_type}
        started = time.perf_counter()
        watch = _Watch(self.timeout)
        _current.watch = watch
        reply = None
        try:
            reply = self._session.post(self.url, data=body, headers=headers, stream=True,
                                       timeout=self.timeout, allow_redirects=False)
            content = b"".join(reply.iter_content(65536))
            if watch.fired:
                raise requests.Timeout("deadline")
        except requests.RequestException as exc:
            if watch.fired or isinstance(exc, requests.Timeout):
                error = (f"Timeout: no complete reply within {self.timeout:g}s "
                         f"from POST {self.url}")
            else:
                error = f"{type(exc).__name__} on POST {self.url}"
            return ApiResponse(http_status=None, latency_ms=_ms_since(started),
                               error=self._redact(error))
        finally:
            watch.cancel()
            _current.watch = None
            if reply is not None:
                reply.close()
        latency = _ms_since(started)
        return self._parse(reply.status_code, content, reply.headers, latency)

    def _parse(self, status: int, content: bytes, headers: Any, latency: float) -> ApiResponse:
        text = self._redact(content.decode("utf-8", "replace"))
        body: dict[str, Any] | None = None
        if text.strip():
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                body = self._redact.value(parsed)  # catches escapes the text pass cannot see
        error = _error_object(body)
        retry_after = _retry_after(error, headers)
        fbtrace = headers.get("x-fb-trace-id")
        if body is not None and isinstance(body.get("fbtrace_id"), str):
            fbtrace = body["fbtrace_id"]
        if error is None:
            problem = None
            if body is None and text.strip():
                problem = (f"HTTP {status}, not a JSON object: "
                           f"{' '.join(text.split())[:_MAX_TEXT]}")
            elif body is None and 200 <= status < 300:
                problem = f"HTTP {status} with an empty body"
            return ApiResponse(http_status=status, body=body, latency_ms=latency,
                               fbtrace_id=fbtrace, retry_after_seconds=retry_after, error=problem)
        user = " ".join(str(error[k]) for k in ("error_user_title", "error_user_msg")
                        if error.get(k))
        message = error.get("message", error.get("error_msg"))
        return ApiResponse(
            http_status=status,
            body=body,
            latency_ms=latency,
            code=_int(error.get("code", error.get("error_code"))),
            subcode=_int(error.get("error_subcode")),
            message=str(message)[:_MAX_MESSAGE] if message is not None else None,
            fbtrace_id=str(error.get("fbtrace_id") or fbtrace or "") or None,
            is_transient=error.get("is_transient") is True,
            type=str(error.get("type", error.get("error_type")) or "") or None,
            retry_after_seconds=retry_after,
            user_message=user[:_MAX_MESSAGE] or None,
            event_index=_event_index(error),
        )

    # ----- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"GraphClient(url={self.url!r}, body_format={self.body_format!r}, "
                f"upload_tag={self.upload_tag!r}, token=<hidden>)")

    def __reduce__(self) -> Any:
        raise TypeError("GraphClient holds a token and a connection pool: build it in the task")


# ----- the request deadline ----------------------------------------------------------------------
_current = threading.local()  # the _Watch of the request running on this thread


class _Watch:
    """Cuts the connections of one request when its deadline passes (see :class:`_Watchdog`)."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self.done = False
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []
        _WATCHDOG.watch(time.monotonic() + seconds, self)

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)
            if self.fired:
                _cut(connection)

    def fire(self) -> None:
        # The cuts happen under the lock, so once :meth:`cancel` has returned none is left:
        # a connection object outlives its socket, and a late cut would shut the socket of the
        # next request on it.
        with self._lock:
            if self.done:
                return
            self.fired = True
            for connection in self._connections:
                _cut(connection)

    def cancel(self) -> None:
        with self._lock:
            self.done = True
            self._connections.clear()


class _Watchdog:
    """One daemon thread per process that fires the watches whose deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = 0
        self._compact_at = 1024
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, watch: _Watch) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, watch))
            if len(self._heap) > self._compact_at:  # drop finished requests' entries
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._compact_at = max(1024, 2 * len(self._heap))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="request-deadline",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait(5.0)
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, due = heapq.heappop(self._heap)
            due.fire()


_WATCHDOG = _Watchdog()


def _cut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Watched:
    """Connection mix-in: a connection used by a request joins that request's watch."""

    def _join_watch(self) -> None:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.attach(self)

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._join_watch()

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._join_watch()
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose connections (direct or through a proxy) obey the request deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)  # type: ignore[no-untyped-call]
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


# ----- parsing helpers --------------------------------------------------------------------------
def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _event_index(error: dict[str, Any]) -> int | None:
    """``error_data.event_index``, with ``error_data`` an object or a JSON string."""
    data = error.get("error_data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    index = _int(data.get("event_index"))
    return index if index is not None and index >= 0 else None


def _error_object(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """Meta's error object: ``{"error": {...}}``, or the legacy flat ``{"error_code": ...}``."""
    if body is None:
        return None
    error = body.get("error")
    if isinstance(error, dict):
        return error
    if "error_code" in body:
        return body
    return None


def _regain_minutes(node: Any) -> float | None:
    """The largest ``estimated_time_to_regain_access`` anywhere in a parsed JSON value."""
    best: float | None = None
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "estimated_time_to_regain_access":
                    try:
                        minutes = float(value)
                    except (TypeError, ValueError):
                        continue
                    best = minutes if best is None else max(best, minutes)
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return best


def _retry_after(error: dict[str, Any] | None, headers: Any) -> float | None:
    """Seconds Meta asks us to wait, from the error body or the usage headers; None if none."""
    minutes: list[float] = []
    if error is not None:
        data = error.get("error_data")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                data = None
        found = _regain_minutes(data)
        if found is not None:
            minutes.append(found)
    for name in USAGE_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        try:
            found = _regain_minutes(json.loads(raw))
        except ValueError:
            continue
        if found is not None:
            minutes.append(found)
    seconds = [m * 60.0 for m in minutes]
    raw_retry_after = headers.get("Retry-After")
    if raw_retry_after:
        try:
            seconds.append(float(raw_retry_after))
        except ValueError:
            pass  # an HTTP date: not worth parsing for this API
    longest = max(seconds, default=0.0)
    return longest if longest > 0 else None
