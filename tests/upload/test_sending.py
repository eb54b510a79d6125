"""The delivery core against a scripted fake client: no Spark, no network, injected sleeps."""

from __future__ import annotations

import json
import pickle
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobs.config import JobConfig, UploadConfig
from jobs.upload.graph_client import ApiResponse
from jobs.upload.sending import (
    AccessTokenRejected,
    ChunkSender,
    DeliveryLimits,
    Outcome,
    RateLimiter,
    RetryPolicy,
    Verdict,
    chunk_id,
    classify,
    send_chunks,
)

Respond = Callable[[tuple[str, ...], int], ApiResponse]


# ----- helpers ------------------------------------------------------------------------------------
def ok(n: int, key: str = "events_received") -> ApiResponse:
    return ApiResponse(http_status=200, body={key: n, "fbtrace_id": "OK"}, fbtrace_id="OK",
                       latency_ms=10.0)


def err(status: int | None, code: int | None = None, *, subcode: int | None = None,
        message: str | None = "boom", transient: bool = False,
        retry_after: float | None = None, user_message: str | None = None) -> ApiResponse:
    if status is None:
        return ApiResponse(http_status=None, error="ConnectTimeout on POST http://127.0.0.1/x",
                           latency_ms=5.0)
    return ApiResponse(http_status=status, body={"error": {"code": code}}, code=code,
                       subcode=subcode, message=message, fbtrace_id=f"FB{code}",
                       is_transient=transient, retry_after_seconds=retry_after,
                       user_message=user_message, latency_ms=5.0)


class FakeClient:
    """Records calls and concurrency; answers with ``respond(payloads, call_number)``."""

    def __init__(self, respond: Respond | None = None, delay: float = 0.0) -> None:
        self.respond = respond or (lambda payloads, n: ok(len(payloads)))
        self.delay = delay
        self.calls: list[tuple[str, ...]] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    def post_events(self, payloads: Any) -> ApiResponse:
        payloads = tuple(payloads)
        with self.lock:
            number = len(self.calls)
            self.calls.append(payloads)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            return self.respond(payloads, number)
        finally:
            with self.lock:
                self.active -= 1


def scripted(*responses: ApiResponse) -> Respond:
    """Answer with ``responses`` in order, then success."""
    queue = list(responses)
    lock = threading.Lock()

    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        with lock:
            return queue.pop(0) if queue else ok(len(payloads))
    return respond


def events(n: int) -> list[tuple[str, str]]:
    return [(f"k{i}", f'{{"i":{i}}}') for i in range(n)]


def key_of(payload: str) -> str:
    return "k" + re.search(r'"i":(\d+)', payload).group(1)  # type: ignore[union-attr]


class Sleeps(list):
    """An injected sleep that records durations and returns at once."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def limits(sleeps: Sleeps | None = None, **kwargs: Any) -> DeliveryLimits:
    kwargs.setdefault("chunk_size", 10)
    kwargs.setdefault("max_in_flight", 1)
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_seconds=1.0, max_seconds=8.0,
                                           throttle_seconds=30.0, rng=random.Random(7)))
    return DeliveryLimits(sleep=sleeps if sleeps is not None else Sleeps(), **kwargs)


def run(evts: Any, client: FakeClient, lim: DeliveryLimits) -> list[Outcome]:
    return list(send_chunks(iter(evts), client, lim))


def by_key(outcomes: list[Outcome]) -> dict[str, Outcome]:
    """Each event key → its outcome; fails if a key is in two outcomes."""
    seen: dict[str, Outcome] = {}
    for o in outcomes:
        for k in o.event_keys:
            assert k not in seen, f"{k} in two outcomes"
            seen[k] = o
    return seen


# ----- classification -----------------------------------------------------------------------------
@pytest.mark.parametrize(("response", "verdict"), [
    (ok(3), Verdict.DELIVERED),
    (ApiResponse(http_status=200, body={}), Verdict.DELIVERED),  # no count: see below
    (ApiResponse(http_status=200), Verdict.UNCONFIRMED),  # no JSON body
    (ApiResponse(http_status=400, code=100, message="Invalid appsecret_proof provided in the "
                 "API argument"), Verdict.TOKEN),  # credentials, not an event
    (err(413, None), Verdict.TOO_LARGE),
    (err(413, 1), Verdict.TOO_LARGE),
    (err(400, 100, subcode=33), Verdict.DATASET),
    (err(400, 100, subcode=2804003), Verdict.INVALID),
    (err(None), Verdict.RETRY),
    (err(500), Verdict.RETRY),
    (err(503, None), Verdict.RETRY),
    (err(429), Verdict.RETRY),
    *[(err(400, c), Verdict.RETRY) for c in (1, 2, 341, 368, 5000, 21009)],
    (err(400, 999, transient=True), Verdict.RETRY),
    (err(400, 100, transient=True), Verdict.RETRY),
    *[(err(400, c), Verdict.THROTTLE) for c in (4, 17, 32, 613, 80000, 80004, 80008)],
    (err(400, 100), Verdict.INVALID),
    (err(500, 100), Verdict.INVALID),
    (err(401, 190), Verdict.TOKEN),
    (err(400, 190, transient=True), Verdict.TOKEN),
    (err(403, 200), Verdict.FATAL),
    (err(500, 294), Verdict.FATAL),
    (err(400, 12345), Verdict.FATAL),
    (err(404, None), Verdict.FATAL),
    (err(200, 12345), Verdict.FATAL),  # an error body on a 200 is not a delivery
    (err(307, None), Verdict.FATAL),
])
def test_classify(response, verdict):
    assert classify(response) is verdict


# ----- retry policy and rate limiter --------------------------------------------------------------
class _FixedRng(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_retry_policy_full_jitter_and_cap():
    high = RetryPolicy(base_seconds=1, max_seconds=8, rng=_FixedRng(0.999))
    assert [round(high.delay(n), 2) for n in range(1, 7)] == [1.0, 2.0, 4.0, 7.99, 7.99, 7.99]
    low = RetryPolicy(base_seconds=1, max_seconds=8, rng=_FixedRng(0.0))
    assert low.delay(3) == 0.0
    assert high.delay(10_000) == pytest.approx(7.992)  # no overflow


def test_retry_policy_throttle_waits_longer():
    policy = RetryPolicy(base_seconds=1, max_seconds=60, throttle_seconds=30, rng=_FixedRng(0.0))
    assert [policy.delay(n, Verdict.THROTTLE) for n in (1, 2, 3)] == [30.0, 60.0, 60.0]
    jittered = RetryPolicy(max_seconds=60, throttle_seconds=30, rng=_FixedRng(0.999))
    assert 30 <= jittered.delay(1, Verdict.THROTTLE) < 45
    # throttle_seconds above max_seconds still wins
    slow = RetryPolicy(max_seconds=10, throttle_seconds=120, rng=_FixedRng(0.0))
    assert slow.delay(3, Verdict.THROTTLE) == 120.0


def test_retry_policy_honours_retry_after_with_a_cap():
    policy = RetryPolicy(max_seconds=8, rng=_FixedRng(0.5), max_retry_after_seconds=900)
    assert policy.delay(1, Verdict.RETRY, retry_after=300) == 300
    assert policy.delay(1, Verdict.THROTTLE, retry_after=7200) == 900
    assert policy.delay(4, Verdict.RETRY, retry_after=0.1) == 4.0  # the backoff is longer


def test_retry_policy_from_upload():
    p = RetryPolicy.from_upload(UploadConfig(max_attempts=3, backoff_base_seconds=2,
                                             backoff_max_seconds=20, throttle_backoff_seconds=90))
    assert (p.max_attempts, p.base_seconds, p.max_seconds, p.throttle_seconds) == (3, 2, 20, 90)


def test_rate_limiter_spaces_requests():
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, clock=lambda: now[0], sleep=sleep)
    got = [limiter.acquire() for _ in range(5)]
    assert got == pytest.approx([0.0, 0.1, 0.1, 0.1, 0.1])
    assert now[0] == pytest.approx(100.4)
    now[0] += 5  # idle time does not bank unlimited credit
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(0.1)


def test_rate_limiter_burst():
    now = [0.0]
    limiter = RateLimiter(2, burst=3, clock=lambda: now[0], sleep=lambda s: None)
    assert [limiter.acquire() for _ in range(5)] == pytest.approx([0, 0, 0, 0.5, 1.0])


def test_rate_limit_shared_by_the_task_threads():
    client = FakeClient()
    lim = DeliveryLimits(chunk_size=1, max_in_flight=4, rate_limit_per_second=50)  # real sleep
    sender = ChunkSender(client, lim)
    started = time.monotonic()
    outcomes = list(sender.send(events(11)))
    assert len(outcomes) == 11
    # 11 requests at 50/s over 4 threads take 10 intervals of 20 ms: the bucket is shared
    assert time.monotonic() - started >= 0.19
    assert sender.stats["rate_limit_wait_seconds"] > 0.15


# ----- chunking, laziness, concurrency ------------------------------------------------------------
def test_chunks_are_bounded_and_the_last_is_partial():
    client = FakeClient()
    outcomes = run(events(25), client, limits(chunk_size=10))
    assert [len(c) for c in client.calls] == [10, 10, 5]
    assert [o.event_count for o in outcomes] == [10, 10, 5]
    assert all(o.status == "delivered" and o.attempts == 1 for o in outcomes)
    assert [o.events_received for o in outcomes] == [10, 10, 5]
    assert outcomes[0].event_keys == tuple(f"k{i}" for i in range(10))
    assert outcomes[0].chunk_id == chunk_id([f"k{i}" for i in range(10)])
    assert client.calls[0] == tuple(f'{{"i":{i}}}' for i in range(10))  # payloads untouched


def test_no_events_no_request():
    client = FakeClient()
    assert run([], client, limits()) == []
    assert client.calls == []


def test_outcome_row_is_plain_json():
    (o,) = run(events(3), FakeClient(), limits())
    row = o.as_row()
    assert json.loads(json.dumps(row)) == row
    assert row["event_keys"] == ["k0", "k1", "k2"]
    assert set(row) == {"chunk_id", "event_keys", "event_count", "status", "http_status",
                        "error_code", "error_subcode", "error_message", "fbtrace_id", "attempts",
                        "latency_ms", "started_at", "finished_at", "events_received"}
    assert row["latency_ms"] == 10 and isinstance(row["latency_ms"], int)
    assert row["started_at"] <= row["finished_at"]


def test_chunk_id_is_deterministic_and_order_sensitive():
    assert chunk_id(["a", "b"]) == chunk_id(("a", "b"))
    assert chunk_id(["a", "b"]) != chunk_id(["b", "a"])
    assert chunk_id(["ab"]) != chunk_id(["a", "b"])
    assert re.fullmatch(r"[0-9a-f]{64}", chunk_id(["a"]))


@pytest.mark.parametrize("max_in_flight", [1, 3])
def test_events_are_read_lazily(max_in_flight):
    chunk, total = 5, 200
    pulled = [0]
    settled = [0]
    bound = (max_in_flight + 1) * chunk

    def source() -> Iterator[tuple[str, str]]:
        for e in events(total):
            assert pulled[0] - settled[0] < bound, "read too far ahead"
            pulled[0] += 1
            yield e

    client = FakeClient(delay=0.001)
    stream = send_chunks(source(), client, limits(chunk_size=chunk,
                                                  max_in_flight=max_in_flight))
    for outcome in stream:
        settled[0] += outcome.event_count
    assert settled[0] == total


def test_closing_early_stops_reading_and_sending():
    pulled = [0]

    def source() -> Iterator[tuple[str, str]]:
        for e in events(1000):
            pulled[0] += 1
            yield e

    client = FakeClient(delay=0.005)
    stream = send_chunks(source(), client, limits(chunk_size=10, max_in_flight=2))
    next(stream)
    stream.close()
    calls = len(client.calls)
    assert pulled[0] <= 30
    assert calls <= 3
    time.sleep(0.03)
    assert len(client.calls) == calls


@pytest.mark.parametrize("max_in_flight", [2, 4])
def test_max_in_flight_is_reached_never_exceeded(max_in_flight):
    client = FakeClient(delay=0.02)
    outcomes = run(events(60), client, limits(chunk_size=3, max_in_flight=max_in_flight))
    assert client.max_active == max_in_flight
    assert sorted(k for o in outcomes for k in o.event_keys) == sorted(k for k, _ in events(60))


def test_client_exception_propagates():
    def respond(payloads, n):
        raise RuntimeError("bug in the client")
    with pytest.raises(RuntimeError, match="bug in the client"):
        run(events(30), FakeClient(respond), limits(max_in_flight=2))


# ----- retries ------------------------------------------------------------------------------------
def test_5xx_429_and_connection_errors_are_retried_with_backoff():
    sleeps = Sleeps()
    client = FakeClient(scripted(err(500), err(429), err(None)))
    (o,) = run(events(4), client, limits(sleeps))
    assert o.status == "delivered" and o.attempts == 4
    assert o.latency_ms == 5 + 5 + 5 + 10
    assert len(client.calls) == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (1, 2, 4), strict=True))


@pytest.mark.parametrize("response", [
    err(400, 1), err(500, 2), err(400, 341), err(400, 368), err(400, 5000), err(400, 21009),
    err(400, 777, transient=True)])
def test_transient_codes_are_retried(response):
    sleeps = Sleeps()
    client = FakeClient(scripted(response))
    (o,) = run(events(2), client, limits(sleeps))
    assert (o.status, o.attempts, len(sleeps)) == ("delivered", 2, 1)
    assert sleeps[0] <= 1.0


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80000, 80004, 80008])
def test_throttling_backs_off_longer(code):
    sleeps = Sleeps()
    client = FakeClient(scripted(err(400, code), err(400, code)))
    (o,) = run(events(2), client, limits(sleeps))
    assert (o.status, o.attempts) == ("delivered", 3)
    assert len(sleeps) == 2 and all(30 <= s < 45 for s in sleeps)  # cap: max(8, 30) + jitter


def test_retry_after_is_honoured():
    sleeps = Sleeps()
    client = FakeClient(scripted(err(400, 80004, retry_after=600), err(503, retry_after=45)))
    sender = ChunkSender(client, limits(sleeps))
    (o,) = list(sender.send(events(1)))
    assert o.status == "delivered"
    assert sleeps[0] >= 600 and sleeps[1] >= 45
    assert sender.stats["retries"] == 2 and sender.stats["throttled"] == 1


def test_retries_exhausted_is_failed_with_the_last_error():
    sleeps = Sleeps()
    client = FakeClient(lambda p, n: err(503, None, message=None) if n < 3 else err(None))
    (o,) = run(events(5), client, limits(sleeps))
    assert o.status == "failed" and o.attempts == 4 and len(client.calls) == 4
    assert len(sleeps) == 3
    assert o.http_status is None
    assert o.error_message == "ConnectTimeout on POST http://127.0.0.1/x"
    client = FakeClient(lambda p, n: err(503, None, message=None))
    (o,) = run(events(5), client, limits())
    assert (o.status, o.http_status, o.error_message) == ("failed", 503, "HTTP 503")


@pytest.mark.parametrize(("code", "status"), [(200, "rejected"), (294, "rejected"),
                                               (100, "rejected"), (190, "failed"),
                                               (12345, "rejected")])
def test_no_retry_for_permanent_errors(code, status):
    sleeps = Sleeps()
    client = FakeClient(lambda p, n: err(400, code, subcode=7, message=f"error {code}"))
    outcomes = run(events(1), client, limits(sleeps))
    assert len(client.calls) == 1 and sleeps == []
    (o,) = outcomes
    assert (o.status, o.error_code, o.error_subcode, o.http_status) == (status, code, 7, 400)
    assert o.error_message == f"error {code}" and o.fbtrace_id == f"FB{code}"
    assert o.events_received is None


def test_fatal_rejects_the_whole_chunk_without_isolation():
    client = FakeClient(lambda p, n: err(403, 200, message="Permissions error"))
    outcomes = run(events(25), client, limits(chunk_size=10))
    assert len(client.calls) == 3
    assert [(o.status, o.event_count) for o in outcomes] == [("rejected", 10)] * 2 + [
        ("rejected", 5)]


# ----- isolation of invalid events ----------------------------------------------------------------
def _invalid_when(bad: set[str], *, name_index: bool, where: str = "message") -> Respond:
    """Meta-like: code 100 when any bad event is in the request, naming the first if asked."""
    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        keys = [key_of(p) for p in payloads]
        hits = [i for i, k in enumerate(keys) if k in bad]
        if not hits:
            return ok(len(payloads))
        text = f"Invalid parameter: data[{hits[0]}] event_time too old" if name_index else (
            "Invalid parameter")
        if where == "user":
            return err(400, 100, subcode=2804003, message="Invalid parameter",
                       user_message=text)
        return err(400, 100, subcode=2804003, message=text)
    return respond


def _check_isolation(outcomes: list[Outcome], client: FakeClient, total: int,
                     bad: set[str]) -> None:
    mapping = by_key(outcomes)
    assert set(mapping) == {f"k{i}" for i in range(total)}
    delivered = Counter(key_of(p) for call in client.calls for p in call
                        if not any(key_of(q) in bad for q in call))
    for key, outcome in mapping.items():
        if key in bad:
            assert outcome.status == "rejected" and outcome.event_keys == (key,)
            assert outcome.error_code == 100 and outcome.error_subcode == 2804003
            assert "Invalid parameter" in (outcome.error_message or "")
            assert outcome.chunk_id == chunk_id([key])
        else:
            assert outcome.status == "delivered"
            assert delivered[key] == 1  # landed exactly once
    assert sum(o.attempts for o in outcomes) == len(client.calls)
    assert len({o.chunk_id for o in outcomes}) == len(outcomes)


@pytest.mark.parametrize("where", ["message", "user"])
def test_invalid_events_named_by_index_are_rejected_and_the_rest_resent(where):
    bad = {"k2", "k7", "k13"}
    client = FakeClient(_invalid_when(bad, name_index=True, where=where))
    sender = ChunkSender(client, limits(chunk_size=10))
    outcomes = list(sender.send(events(15)))
    _check_isolation(outcomes, client, 15, bad)
    # chunk 1: 3 requests (k2, k7 named, then the 8 good); chunk 2: 2 requests
    assert len(client.calls) == 5
    rejected = [o for o in outcomes if o.status == "rejected"]
    assert "data[" in (rejected[0].error_message or "")
    assert sender.stats["isolated_rejections"] == 3


@pytest.mark.parametrize("dialect", ["capi", "offline_conversions"])
def test_invalid_events_without_index_are_found_by_bisection(dialect):
    bad = {"k0", "k5", "k9", "k31"}
    received_key = "events_received" if dialect == "capi" else "num_processed_entries"

    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        r = _invalid_when(bad, name_index=False)(payloads, n)
        return ok(len(payloads), received_key) if r.http_status == 200 else r

    client = FakeClient(respond)
    outcomes = run(events(40), client, limits(chunk_size=16, dialect=dialect, max_in_flight=2))
    _check_isolation(outcomes, client, 40, bad)
    for o in outcomes:
        if o.status == "delivered":
            assert o.events_received == o.event_count


def test_index_outside_the_request_falls_back_to_bisection():
    bad = {"k3"}

    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        if any(key_of(p) in bad for p in payloads):
            return err(400, 100, subcode=2804003, message="Invalid parameter data[99]")
        return ok(len(payloads))

    client = FakeClient(respond)
    _check_isolation(run(events(8), client, limits(chunk_size=8)), client, 8, bad)


def test_isolation_sub_requests_are_retried_too():
    bad = {"k1"}
    inner = _invalid_when(bad, name_index=False)

    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        if n == 1:
            return err(503)
        return inner(payloads, n)

    sleeps = Sleeps()
    client = FakeClient(respond)
    outcomes = run(events(4), client, limits(sleeps, chunk_size=4))
    _check_isolation(outcomes, client, 4, bad)
    assert len(sleeps) == 1


# ----- token rejected -----------------------------------------------------------------------------
def test_token_rejection_sends_one_request_then_stops():
    pulled = [0]

    def source() -> Iterator[tuple[str, str]]:
        for e in events(500):
            pulled[0] += 1
            yield e

    client = FakeClient(lambda p, n: err(401, 190, subcode=463, message="Session has expired"))
    sender = ChunkSender(client, limits(chunk_size=10))
    outcomes = list(sender.send(source()))
    assert len(client.calls) == 1
    (o,) = outcomes
    assert (o.status, o.error_code, o.error_subcode, o.event_count) == ("failed", 190, 463, 10)
    assert sender.stopped_by_token and sender.token_outcome == o
    assert pulled[0] <= 20
    with pytest.raises(AccessTokenRejected, match=r"code 190, subcode 463.*Session has expired"):
        sender.raise_for_token()


def test_no_stop_no_raise():
    sender = ChunkSender(FakeClient(), limits())
    list(sender.send(events(3)))
    assert not sender.stopped_by_token
    sender.raise_for_token()
    with pytest.raises(RuntimeError, match="one partition"):
        sender.send(events(1))


def test_first_chunk_goes_alone_so_a_bad_token_costs_one_request():
    client = FakeClient(lambda payloads, n: err(401, 190, message="Invalid OAuth access token"))
    sender = ChunkSender(client, limits(chunk_size=1, max_in_flight=4))
    outcomes = list(sender.send(events(100)))
    assert len(client.calls) == 1 and sender.stopped_by_token
    assert [(o.event_keys, o.error_code) for o in outcomes] == [(("k0",), 190)]


def test_token_rejection_with_requests_in_flight_sends_nothing_more():
    barrier = threading.Barrier(4, timeout=5)

    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        if n == 0:
            return ok(1)  # the first chunk goes alone and opens the window
        if n < 5:
            barrier.wait()  # then four chunks are in flight
        if payloads[0] == '{"i":1}':
            return err(401, 190, message="Invalid OAuth access token")
        time.sleep(0.05)  # answers after the token was rejected
        return err(503) if payloads[0] != '{"i":2}' else ok(1)

    client = FakeClient(respond)
    sender = ChunkSender(client, limits(chunk_size=1, max_in_flight=4))
    outcomes = list(sender.send(events(100)))
    assert len(client.calls) == 5  # the first, the in-flight ones, nothing after
    statuses = sorted((o.event_keys[0], o.status) for o in outcomes)
    # k1: the token failure; k2: delivered in flight (kept); k3, k4: would need a retry → dropped
    assert statuses == [("k0", "delivered"), ("k1", "failed"), ("k2", "delivered")]
    assert sender.stopped_by_token


def test_token_stop_wakes_a_sleeping_retry():
    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        if payloads[0] == '{"i":0}':
            return ok(1)
        if payloads[0] == '{"i":1}':
            return err(400, 17)  # throttled: would wait at least 30 s
        time.sleep(0.05)
        return err(401, 190)

    client = FakeClient(respond)
    lim = DeliveryLimits(chunk_size=1, max_in_flight=2, retry=RetryPolicy(throttle_seconds=30))
    started = time.monotonic()
    outcomes = list(send_chunks(events(3), client, lim))  # real, interruptible sleep
    assert time.monotonic() - started < 5
    assert len(client.calls) == 3
    assert [(o.event_keys, o.error_code) for o in outcomes] == [(("k0",), None),
                                                                (("k2",), 190)]


def test_token_rejection_during_isolation_keeps_settled_parts():
    bad = {"k6"}
    inner = _invalid_when(bad, name_index=False)

    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        if n == 2:  # second half of the first split
            return err(400, 190)
        return inner(payloads, n)

    client = FakeClient(respond)
    sender = ChunkSender(client, limits(chunk_size=8))
    outcomes = list(sender.send(events(16)))
    assert [(o.status, o.event_count) for o in outcomes] == [("delivered", 4), ("failed", 4)]
    assert len(client.calls) == 3 and sender.stopped_by_token


# ----- settings ----------------------------------------------------------------------------------
def test_limits_validation():
    with pytest.raises(ValueError, match="between 1 and 1000"):
        DeliveryLimits(chunk_size=1001)
    DeliveryLimits(chunk_size=2000, dialect="offline_conversions")
    with pytest.raises(ValueError):
        DeliveryLimits(chunk_size=10, max_in_flight=0)
    with pytest.raises(ValueError):
        DeliveryLimits(chunk_size=10, rate_limit_per_second=0)


def test_limits_from_config_split_the_rate_across_tasks():
    config = JobConfig(dialect="offline_conversions",
                       upload=UploadConfig(rate_limit_per_second=40, max_in_flight=3,
                                           max_attempts=5))
    lim = DeliveryLimits.from_config(config, tasks=8)
    assert (lim.chunk_size, lim.max_in_flight, lim.rate_limit_per_second, lim.dialect,
            lim.retry.max_attempts) == (2000, 3, 5.0, "offline_conversions", 5)
    assert DeliveryLimits.from_config(JobConfig()).rate_limit_per_second is None


def test_limits_pickle_for_shipping_to_tasks():
    lim = DeliveryLimits.from_config(JobConfig(upload=UploadConfig(rate_limit_per_second=4)))
    copy = pickle.loads(pickle.dumps(lim))
    assert (copy.chunk_size, copy.rate_limit_per_second, copy.retry.max_attempts) == (
        lim.chunk_size, 4.0, lim.retry.max_attempts)


# ----- a 200 that does not confirm the events ---------------------------------------------------
def test_classify_checks_the_count_against_the_events_sent():
    assert classify(ok(5), sent=5) is Verdict.DELIVERED
    assert classify(ok(6), sent=5) is Verdict.DELIVERED
    assert classify(ok(4), sent=5) is Verdict.UNCONFIRMED
    assert classify(ApiResponse(http_status=200, body={"fbtrace_id": "X"}), sent=5) \
        is Verdict.UNCONFIRMED  # a success body that names no count
    legacy = ok(4, "num_processed_entries")
    assert classify(legacy, sent=4, dialect="offline_conversions") is Verdict.DELIVERED
    assert classify(legacy, sent=5, dialect="offline_conversions") is Verdict.UNCONFIRMED


def test_a_200_with_text_is_retried_then_failed_with_the_reply():
    sleeps = Sleeps()
    text = ApiResponse(http_status=200, error="HTTP 200, not a JSON object: <html>proxy</html>",
                       latency_ms=3.0)
    client = FakeClient(lambda p, n: text)
    sender = ChunkSender(client, limits(sleeps))
    (o,) = list(sender.send(events(5)))
    assert (o.status, o.attempts, o.http_status, o.events_received) == ("failed", 4, 200, None)
    assert o.error_message is not None and "<html>proxy</html>" in o.error_message
    assert len(sleeps) == 3
    assert sender.stats["unconfirmed_replies"] == 4 and sender.stats["retries"] == 3


@pytest.mark.parametrize(("dialect", "key"), [("capi", "events_received"),
                                              ("offline_conversions", "num_processed_entries")])
def test_a_short_count_is_retried_then_failed(dialect, key):
    client = FakeClient(lambda p, n: ok(len(p) - 1, key))
    sender = ChunkSender(client, limits(dialect=dialect))
    outcomes = list(sender.send(events(12)))
    assert [(o.status, o.event_count, o.attempts) for o in outcomes] == [
        ("failed", 10, 4), ("failed", 2, 4)]
    assert "confirms 9 of 10 events" in (outcomes[0].error_message or "")
    assert key in (outcomes[0].error_message or "")
    assert sender.stats["unconfirmed_replies"] == 8


def test_a_short_count_then_a_full_one_is_delivered():
    client = FakeClient(scripted(ok(3)))
    (o,) = run(events(5), client, limits())
    assert (o.status, o.attempts, o.events_received) == ("delivered", 2, 5)


def test_an_unconfirmed_reply_message_is_truncated_and_redacted():
    class Redacting(FakeClient):
        def redact(self, text: str) -> str:
            return text.replace("SECRET", "[redacted]")

    body = {"events_received": 0, "note": "SECRET " + "x" * 5000}
    client = Redacting(lambda p, n: ApiResponse(http_status=200, body=body))
    (o,) = run(events(2), client, limits())
    assert o.status == "failed" and "SECRET" not in (o.error_message or "")
    assert "[redacted]" in (o.error_message or "") and len(o.error_message or "") <= 1000


# ----- 413: a size problem -----------------------------------------------------------------------
def test_413_splits_the_chunk_and_delivers_everything():
    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        return err(413, None, message=None) if len(payloads) > 3 else ok(len(payloads))

    client = FakeClient(respond)
    sender = ChunkSender(client, limits(chunk_size=10))
    outcomes = list(sender.send(events(20)))
    mapping = by_key(outcomes)
    assert set(mapping) == {f"k{i}" for i in range(20)}
    assert all(o.status == "delivered" for o in outcomes)
    assert max(len(c) for c in client.calls if c) <= 10
    assert sum(o.attempts for o in outcomes) == len(client.calls)
    assert sender.stats["size_splits"] > 0 and sender.stats["isolated_rejections"] == 0


def test_413_on_a_single_event_rejects_only_that_event():
    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        if any(key_of(p) == "k5" for p in payloads):
            return err(413, None, message=None)
        return ok(len(payloads))

    client = FakeClient(respond)
    outcomes = run(events(8), client, limits(chunk_size=8))
    mapping = by_key(outcomes)
    assert mapping["k5"].status == "rejected" and mapping["k5"].event_keys == ("k5",)
    assert "413" in (mapping["k5"].error_message or "")
    assert all(mapping[f"k{i}"].status == "delivered" for i in range(8) if i != 5)


# ----- circuit breaker --------------------------------------------------------------------------
class Clock:
    """A fake monotonic clock that a recorded sleep advances."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker_limits(clock: Clock, seconds: float | None, **kwargs: Any) -> DeliveryLimits:
    sleeps = Sleeps()

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock.now += s

    kwargs.setdefault("retry", RetryPolicy(max_attempts=1000, base_seconds=1.0, max_seconds=8.0,
                                           rng=random.Random(3)))
    return DeliveryLimits(chunk_size=10, max_in_flight=1, sleep=sleep, clock=clock,
                          circuit_breaker_seconds=seconds, **kwargs)


def test_circuit_breaker_stops_the_task_when_every_request_fails_to_connect():
    clock = Clock()

    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        clock.now += 0.5  # each attempt takes half a second to fail
        return err(None)

    pulled = [0]

    def source() -> Iterator[tuple[str, str]]:
        for e in events(500):
            pulled[0] += 1
            yield e

    client = FakeClient(respond)
    sender = ChunkSender(client, breaker_limits(clock, 30.0))
    outcomes = list(sender.send(source()))
    assert outcomes == []  # nothing final: the events stay unsent for a later run
    assert sender.stop_reason == "endpoint" and not sender.stopped_by_token
    assert "30" in (sender.stop_message or "") and "connection" in (sender.stop_message or "")
    assert 30 <= clock.now - 1000.0 < 40  # stopped at the breaker's time, not after 1000 tries
    assert pulled[0] <= 20
    assert sender.stats["connection_errors"] == len(client.calls)
    assert sender.stats["retries"] == len(client.calls) - 1


def test_any_reply_resets_the_breaker():
    clock = Clock()

    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        clock.now += 5
        return err(503) if n % 4 == 3 else err(None)  # a 503 now and then: the host is up

    # Between two replies: three failed connects of 5 s and three waits of at most 4 s, 27 s in
    # all, so the 30 s breaker can never trip, whatever the jitter draws.
    lim = breaker_limits(clock, 30.0, retry=RetryPolicy(max_attempts=40, base_seconds=1.0,
                                                        max_seconds=4.0, rng=random.Random(3)))
    sender = ChunkSender(FakeClient(respond), lim)
    (o,) = list(sender.send(events(3)))
    assert o.status == "failed" and o.attempts == 40
    assert sender.stop_reason is None


def test_no_breaker_when_disabled():
    clock = Clock()
    lim = breaker_limits(clock, None, retry=RetryPolicy(max_attempts=30, base_seconds=10,
                                                        max_seconds=60))
    sender = ChunkSender(FakeClient(lambda p, n: err(None)), lim)
    (o,) = list(sender.send(events(3)))
    assert o.status == "failed" and o.attempts == 30 and sender.stop_reason is None


# ----- request-level 100/33: the dataset or the token's permissions ----------------------------
def test_dataset_rejected_stops_the_task_after_one_request_and_rejects_nothing():
    message = ("Unsupported post request. Object with ID '555' does not exist, cannot be loaded "
               "due to missing permissions, or does not support this operation")
    client = FakeClient(lambda p, n: err(400, 100, subcode=33, message=message))
    sender = ChunkSender(client, limits(chunk_size=10, max_in_flight=4))
    outcomes = list(sender.send(events(300)))
    assert len(client.calls) == 1
    (o,) = outcomes
    assert (o.status, o.error_code, o.error_subcode) == ("failed", 100, 33)
    assert sender.stop_reason == "dataset" and not sender.stopped_by_token
    assert "does not exist" in (sender.stop_message or "")
    assert not any(x.status == "rejected" for x in outcomes)


# ----- isolation: Meta's pointers first, then a bounded bisection -------------------------------
@pytest.mark.parametrize("index_where", ["event_index", "message"])
def test_isolation_reads_the_event_index(index_where):
    bad = {"k3", "k8"}

    def respond(payloads: tuple[str, ...], n: int) -> ApiResponse:
        hits = [i for i, p in enumerate(payloads) if key_of(p) in bad]
        if not hits:
            return ok(len(payloads))
        if index_where == "event_index":
            return ApiResponse(http_status=400, code=100, subcode=2804003,
                               message="Invalid parameter", fbtrace_id="E",
                               event_index=hits[0])
        return err(400, 100, subcode=2804003, message=f"Invalid parameter (data[{hits[0]}])")

    client = FakeClient(respond)
    outcomes = run(events(10), client, limits(chunk_size=10))
    _check_isolation(outcomes, client, 10, bad)
    assert len(client.calls) == 3  # no bisection: one request per named event, then the rest


def test_bisection_has_a_request_budget_per_chunk():
    client = FakeClient(lambda p, n: err(400, 100, subcode=2804016, message="Invalid parameter",
                                         user_message="user_data keys not hashed"))
    sender = ChunkSender(client, limits(chunk_size=64, isolation_max_requests=10))
    outcomes = list(sender.send(events(128)))
    mapping = by_key(outcomes)
    assert set(mapping) == {f"k{i}" for i in range(128)}
    # per chunk: the first request and at most the budget
    assert len(client.calls) <= 2 * (1 + 10)
    failed = [o for o in outcomes if o.status == "failed"]
    rejected = [o for o in outcomes if o.status == "rejected"]
    assert failed and sum(o.event_count for o in failed) + len(rejected) == 128
    assert all(o.event_count == 1 for o in rejected)
    for o in failed:
        assert o.error_code == 100 and "user_data keys not hashed" in (o.error_message or "")
        assert "isolation" in (o.error_message or "")
    assert sum(o.attempts for o in outcomes) == len(client.calls)
    assert sender.stats["unisolated_events"] == sum(o.event_count for o in failed)


def test_limits_from_config_carry_the_breaker_and_the_budget():
    config = JobConfig(upload=UploadConfig(circuit_breaker_seconds=12, isolation_max_requests=7))
    lim = DeliveryLimits.from_config(config)
    assert (lim.circuit_breaker_seconds, lim.isolation_max_requests) == (12, 7)
    off = DeliveryLimits.from_config(JobConfig(upload=UploadConfig(circuit_breaker_seconds=0)))
    assert off.circuit_breaker_seconds is None


def test_a_tripped_breaker_makes_later_tasks_of_the_process_stop_after_one_probe():
    from jobs.upload import sending

    class UrlClient(FakeClient):
        url = "http://127.0.0.1:9/v24.0/1/events"

    clock = Clock()

    def down(payloads: tuple[str, ...], n: int) -> ApiResponse:
        clock.now += 1
        return err(None)

    try:
        first = ChunkSender(UrlClient(down), breaker_limits(clock, 10.0))
        assert list(first.send(events(30))) == [] and first.stop_reason == "endpoint"
        probe = UrlClient(down)
        second = ChunkSender(probe, breaker_limits(clock, 10.0))
        assert list(second.send(events(30))) == [] and second.stop_reason == "endpoint"
        assert len(probe.calls) == 1  # one probe request, not another 10 s of retries
        back = UrlClient()  # the endpoint is back: the first reply closes the circuit
        third = ChunkSender(back, breaker_limits(clock, 10.0))
        assert [o.status for o in third.send(events(30))] == ["delivered"] * 3
        assert UrlClient.url not in sending._OPEN_CIRCUITS
    finally:
        sending._OPEN_CIRCUITS.clear()


def test_a_timeout_counts_for_the_breaker_from_when_the_request_was_sent():
    clock = Clock()

    def hang(payloads: tuple[str, ...], n: int) -> ApiResponse:
        clock.now += 60  # a request that times out after 60 s
        return err(None)

    client = FakeClient(hang)
    sender = ChunkSender(client, breaker_limits(clock, 60.0))
    assert list(sender.send(events(30))) == []
    assert sender.stop_reason == "endpoint" and len(client.calls) == 1
