"""GraphClient against a tiny recording HTTP server on 127.0.0.1 (no Spark, no real Meta)."""

from __future__ import annotations

import json
import pickle
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from jobs.config import JobConfig, UploadConfig
from jobs.upload.graph_client import ApiResponse, GraphClient
from jobs.upload.sending import DeliveryLimits, Verdict, classify, send_chunks
from tests.upload import fault_servers as fs

TOKEN = "EAAB-secret-token-xyz789"
PAYLOADS = ['{"event_name":"Purchase","value":12.50,"x":"é"}', '{"event_name":"AddToCart"}']


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with server.lock:
            server.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                    "body": body, "client": self.client_address})
            status, headers, reply = (server.replies.popleft() if server.replies
                                      else (200, {}, {"events_received": _count(body)}))
        if server.hold_seconds:
            server.release.wait(server.hold_seconds)
        data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout test)

    def log_message(self, *args: Any) -> None:
        pass


def _count(body: bytes) -> int:
    """The events in a JSON or form request body."""
    try:
        return len(json.loads(body)["data"])
    except ValueError:
        return len(json.loads(parse_qs(body.decode("ascii"))["data"][0]))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[tuple[int, dict[str, str], Any]] = deque()
        self.hold_seconds = 0.0
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def _client(server: _Server, **kwargs: Any) -> GraphClient:
    kwargs.setdefault("upload_tag", "run-1")
    return GraphClient(server.base_url, "v24.0", "1234", TOKEN, **kwargs)


def _assert_token_only_in_body(request: dict[str, Any]) -> None:
    assert TOKEN not in request["path"]
    for name, value in request["headers"].items():
        assert TOKEN not in name and TOKEN not in value


def test_json_body_carries_payloads_verbatim_and_token_only_in_body(server):
    with _client(server, test_event_code="TEST42") as client:
        response = client.post_events(PAYLOADS)
    assert response.http_status == 200
    assert response.body == {"events_received": 2}
    assert response.error is None and response.code is None
    assert response.latency_ms > 0
    (request,) = server.requests
    assert request["path"] == "/v24.0/1234/events"
    assert request["headers"]["Content-Type"] == "application/json"
    _assert_token_only_in_body(request)
    # Not re-parsed: the exact text (12.50, the raw é) is in the body.
    assert ("[" + ",".join(PAYLOADS) + "]").encode() in request["body"]
    assert json.loads(request["body"]) == {
        "access_token": TOKEN, "upload_tag": "run-1", "test_event_code": "TEST42",
        "data": [json.loads(p) for p in PAYLOADS]}


def test_form_body_shape(server):
    with _client(server, body_format="form") as client:
        client.post_events(PAYLOADS)
    (request,) = server.requests
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    _assert_token_only_in_body(request)
    fields = parse_qs(request["body"].decode("ascii"), strict_parsing=True)
    assert fields["access_token"] == [TOKEN]
    assert fields["upload_tag"] == ["run-1"]
    assert "test_event_code" not in fields
    assert fields["data"] == ["[" + ",".join(PAYLOADS) + "]"]


def test_upload_tag_omitted_when_none(server):
    with GraphClient(server.base_url, "v24.0", "1234", TOKEN) as client:
        client.post_events(PAYLOADS[:1])
    assert set(json.loads(server.requests[0]["body"])) == {"access_token", "data"}


def test_keep_alive_reuses_one_connection(server):
    with _client(server) as client:
        for _ in range(4):
            assert client.post_events(PAYLOADS).http_status == 200
    assert len(server.requests) == 4
    assert len({r["client"] for r in server.requests}) == 1


def test_meta_error_fields_are_parsed(server):
    server.replies.append((400, {"x-fb-trace-id": "HDR"}, {"error": {
        "message": "Invalid parameter", "type": "OAuthException", "code": 100,
        "error_subcode": 2804003, "fbtrace_id": "AbC123", "is_transient": False,
        "error_user_title": "Event Timestamp Too Old",
        "error_user_msg": "The timestamp for data[3] is too far in the past."}}))
    with _client(server) as client:
        r = client.post_events(PAYLOADS)
    assert (r.http_status, r.code, r.subcode, r.type) == (400, 100, 2804003, "OAuthException")
    assert r.message == "Invalid parameter"
    assert r.fbtrace_id == "AbC123"
    assert r.is_transient is False
    assert r.user_message == ("Event Timestamp Too Old The timestamp for data[3] is too far in "
                              "the past.")
    assert r.retry_after_seconds is None


def test_transient_flag_and_success_trace_id(server):
    server.replies.append((500, {}, {"error": {"message": "x", "code": 2, "is_transient": True}}))
    server.replies.append((200, {}, {"events_received": 2, "fbtrace_id": "OK1"}))
    with _client(server) as client:
        first, second = client.post_events(PAYLOADS), client.post_events(PAYLOADS)
    assert first.is_transient is True and first.code == 2
    assert second.fbtrace_id == "OK1" and second.code is None


@pytest.mark.parametrize(("headers", "error_data", "expected"), [
    ({}, {"estimated_time_to_regain_access": 2}, 120.0),
    ({}, json.dumps({"estimated_time_to_regain_access": 3}), 180.0),
    ({"X-Business-Use-Case-Usage": json.dumps({"987": [
        {"type": "ads_management", "call_count": 100, "total_cputime": 20, "total_time": 30,
         "estimated_time_to_regain_access": 5}]})}, None, 300.0),
    ({"X-App-Usage": json.dumps({"call_count": 95, "estimated_time_to_regain_access": 1})},
     None, 60.0),
    ({"X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": 99,
                                        "estimated_time_to_regain_access": 4})}, None, 240.0),
    ({"X-Business-Use-Case-Usage": json.dumps({"987": [
        {"type": "ads_management", "estimated_time_to_regain_access": 0}]})}, None, None),
    ({"X-App-Usage": "not json"}, None, None),
    ({"Retry-After": "7"}, None, 7.0),
])
def test_retry_after_from_body_and_headers(server, headers, error_data, expected):
    error: dict[str, Any] = {"message": "limit", "code": 80004}
    if error_data is not None:
        error["error_data"] = error_data
    server.replies.append((429 if expected else 400, headers, {"error": error}))
    with _client(server) as client:
        assert client.post_events(PAYLOADS).retry_after_seconds == expected


def test_echoed_token_is_redacted(server):
    server.replies.append((400, {}, {"error": {
        "message": f"Malformed access token {TOKEN}", "code": 190, "fbtrace_id": "T"}}))
    with _client(server) as client:
        r = client.post_events(PAYLOADS)
    assert r.code == 190
    assert TOKEN not in repr(r)
    assert "[redacted]" in (r.message or "")


def test_non_json_error_reply(server):
    server.replies.append((502, {}, b"<html>Bad   Gateway</html>"))
    with _client(server) as client:
        r = client.post_events(PAYLOADS)
    assert r.http_status == 502 and r.body is None and r.code is None
    assert r.error == "HTTP 502, not a JSON object: <html>Bad Gateway</html>"


def test_timeout_gives_token_free_error(server):
    server.hold_seconds = 5.0
    with _client(server, timeout=0.2) as client:
        r = client.post_events(PAYLOADS)
    server.release.set()
    assert r.http_status is None and r.body is None
    assert r.error is not None and "Timeout" in r.error
    assert "/v24.0/1234/events" in r.error
    assert TOKEN not in repr(r)
    assert 150 < r.latency_ms < 3000


def test_connection_refused_gives_token_free_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with GraphClient(f"http://127.0.0.1:{port}", "v24.0", "1234", TOKEN, timeout=2) as client:
        r = client.post_events(PAYLOADS)
    assert r.http_status is None
    assert r.error == f"ConnectionError on POST http://127.0.0.1:{port}/v24.0/1234/events"
    assert TOKEN not in repr(r)


def test_repr_and_pickle_do_not_leak_the_token(server):
    client = _client(server)
    assert TOKEN not in repr(client) and "<hidden>" in repr(client)
    assert TOKEN not in str(client)
    with pytest.raises(TypeError) as info:
        pickle.dumps(client)
    assert TOKEN not in str(info.value)
    client.close()


def test_invalid_unicode_payload_error_hides_the_body(server):
    with _client(server) as client, pytest.raises(ValueError) as info:
        client.post_events(['{"name":"\ud800"}'])
    assert TOKEN not in str(info.value)
    assert info.value.__suppress_context__
    assert server.requests == []


def test_redirects_are_not_followed(server):
    server.replies.append((307, {"Location": "http://127.0.0.1:9/elsewhere"}, {}))
    with _client(server) as client:
        r = client.post_events(PAYLOADS)
    assert r.http_status == 307
    assert len(server.requests) == 1


def test_from_config():
    config = JobConfig(upload=UploadConfig(base_url="http://127.0.0.1:1/", set_id="777",
                                           api_version="v16.0", body_format="form",
                                           timeout_seconds=5, max_in_flight=3,
                                           test_event_code="T1"))
    with GraphClient.from_config(config, TOKEN, upload_tag="run-9") as client:
        assert client.url == "http://127.0.0.1:1/v16.0/777/events"
        assert (client.body_format, client.timeout, client.upload_tag,
                client.test_event_code) == ("form", 5, "run-9", "T1")


def test_api_response_defaults():
    r = ApiResponse(http_status=200)
    assert (r.body, r.error, r.code, r.is_transient, r.retry_after_seconds) == (
        None, None, None, False, None)


def test_concurrent_sender_shares_the_pool(server):
    events = [(f"k{i}", f'{{"i":{i}}}') for i in range(40)]
    with _client(server, pool_size=4) as client:
        outcomes = list(send_chunks(iter(events), client,
                                    DeliveryLimits(chunk_size=5, max_in_flight=4)))
    assert [o.status for o in outcomes] == ["delivered"] * 8
    assert sorted(k for o in outcomes for k in o.event_keys) == sorted(k for k, _ in events)
    sent = [p for r in server.requests for p in json.loads(r["body"])["data"]]
    assert sorted(p["i"] for p in sent) == list(range(40))
    assert len({r["client"] for r in server.requests}) <= 4


# ----- fault servers: replies that must not pass for a delivery -----------------------------------

#: A token with every character class the wire encodings change.
ODD_TOKEN = 'EAAB/odd+tok=en&x y%z"q\\é~'
APP_SECRET = "app-secret-7c1e/+="


def test_200_with_text_is_not_a_delivery():
    with fs.FaultServer(fs.text_200(b"<html>Welcome to the proxy</html>")) as srv, \
            GraphClient(srv.url, "v24.0", "1234", TOKEN) as client:
        r = client.post_events(PAYLOADS)
    assert r.http_status == 200 and r.body is None
    assert r.error == "HTTP 200, not a JSON object: <html>Welcome to the proxy</html>"
    assert classify(r, sent=len(PAYLOADS)) is Verdict.UNCONFIRMED


@pytest.mark.parametrize("dialect", ["capi", "offline_conversions"])
def test_200_with_a_short_count_is_not_a_delivery(dialect):
    with fs.FaultServer(fs.short_count(1)) as srv, \
            GraphClient(srv.url, "v24.0", "1234", TOKEN) as client:
        r = client.post_events(PAYLOADS)
    assert r.http_status == 200 and r.code is None
    assert classify(r, sent=2, dialect=dialect) is Verdict.UNCONFIRMED
    assert classify(r, sent=1, dialect=dialect) is Verdict.DELIVERED


def test_413_is_a_size_problem():
    with fs.FaultServer(fs.too_large_above(1)) as srv, \
            GraphClient(srv.url, "v24.0", "1234", TOKEN) as client:
        big, small = client.post_events(PAYLOADS), client.post_events(PAYLOADS[:1])
    assert big.http_status == 413 and classify(big, sent=2) is Verdict.TOO_LARGE
    assert small.http_status == 200 and classify(small, sent=1) is Verdict.DELIVERED


def test_a_trickled_reply_is_bounded_by_the_request_deadline():
    # 60 bytes at 0.1 s each: every read is well inside the socket timeout, the whole is not.
    with fs.FaultServer(fs.trickle(0.1)) as srv, \
            GraphClient(srv.url, "v24.0", "1234", TOKEN, timeout=0.5) as client:
        started = time.monotonic()
        r = client.post_events(PAYLOADS)
        elapsed = time.monotonic() - started
        assert r.http_status is None and r.body is None
        assert r.error is not None and "no complete reply within 0.5s" in r.error
        assert elapsed < 2.5
        # the connection that was cut is not reused: the next request gets a clean one
        srv.respond = fs.ok_count
        assert client.post_events(PAYLOADS).http_status == 200


def test_a_late_cut_never_reaches_the_next_request_on_the_connection():
    """The deadline's cuts are over when ``cancel`` returns: a connection joins a watch twice
    (connect and request), and a second cut after the request ended would shut the socket
    that the connection opened for the next request."""
    from jobs.upload import graph_client as gc

    cutting, resume = threading.Event(), threading.Event()

    class Sock:
        def __init__(self) -> None:
            self.shutdowns = 0

        def shutdown(self, how: int) -> None:
            self.shutdowns += 1
            cutting.set()
            resume.wait(5)

    class Connection:
        sock: Any = None

    connection, old, new = Connection(), Sock(), Sock()
    connection.sock = old
    watch = gc._Watch(3600)
    watch.attach(connection)
    watch.attach(connection)
    firing = threading.Thread(target=watch.fire)
    firing.start()
    assert cutting.wait(5)

    def end_request_then_reconnect() -> None:
        watch.cancel()
        connection.sock = new

    ending = threading.Thread(target=end_request_then_reconnect)
    ending.start()
    time.sleep(0.2)
    resume.set()
    firing.join(5)
    ending.join(5)
    assert old.shutdowns == 2 and new.shutdowns == 0


def test_a_trickled_reply_within_the_deadline_arrives_whole():
    with fs.FaultServer(fs.trickle(0.002)) as srv, \
            GraphClient(srv.url, "v24.0", "1234", TOKEN, timeout=5) as client:
        r = client.post_events(PAYLOADS)
    assert r.http_status == 200 and r.body is not None and r.body["events_received"] == 2


def _token_forms(secret: str) -> set[str]:
    from urllib.parse import quote, quote_plus
    return {secret, quote(secret), quote(secret, safe=""), quote_plus(secret),
            json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
            json.dumps(quote_plus(secret))[1:-1]}


@pytest.mark.parametrize("body_format", ["json", "form"])
def test_an_echoed_body_is_redacted_in_every_encoding(body_format):
    with fs.FaultServer(fs.echo_body()) as srv, \
            GraphClient(srv.url, "v24.0", "1234", ODD_TOKEN, body_format=body_format,
                        app_secret=APP_SECRET) as client:
        r = client.post_events(PAYLOADS)
        proof = srv.requests[0].fields["appsecret_proof"]
    assert r.code == 12345 and "Cannot parse request body" in (r.message or "")
    text = repr(r)
    assert "[redacted]" in text
    for secret in (ODD_TOKEN, APP_SECRET, proof):
        for form in _token_forms(secret):
            assert form not in text, (secret, form)


def test_appsecret_proof_is_sent_in_the_body():
    import hashlib
    import hmac
    expected = hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    with fs.FaultServer(fs.ok_count) as srv:
        for body_format in ("json", "form"):
            with GraphClient(srv.url, "v24.0", "1234", TOKEN, body_format=body_format,
                             app_secret=APP_SECRET) as client:
                assert client.post_events(PAYLOADS).http_status == 200
                assert APP_SECRET not in repr(client) and expected not in repr(client)
        with GraphClient(srv.url, "v24.0", "1234", TOKEN) as client:
            client.post_events(PAYLOADS)
    json_req, form_req, plain_req = srv.requests
    for request in (json_req, form_req):
        assert request.fields["appsecret_proof"] == expected
        assert expected not in request.path and APP_SECRET not in request.body.decode()
    assert "appsecret_proof" not in plain_req.fields


def test_error_data_event_index_is_read():
    replies = [{"error_data": {"event_index": 1}}, {"error_data": json.dumps({"event_index": 0})},
               {"error_data": "not json"}]

    def respond(request: fs.Request) -> fs.Reply:
        extra = replies.pop(0)
        return fs.Reply(400, {"error": {"message": "Invalid parameter", "code": 100,
                                        "fbtrace_id": "I", **extra}})

    with fs.FaultServer(respond) as srv, \
            GraphClient(srv.url, "v24.0", "1234", TOKEN) as client:
        got = [client.post_events(PAYLOADS).event_index for _ in range(3)]
    assert got == [1, 0, None]
