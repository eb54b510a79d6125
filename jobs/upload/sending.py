"""The pure sending core (SPEC §5, §7): chunks, concurrency, retries, rate limit, bad-event
isolation.

Pure Python, no Spark: the executor side (``jobs/upload/executor.py``) runs a
:class:`ChunkSender` inside ``mapPartitions`` over the partition's ``(event_key, payload)``
pairs, with one :class:`~jobs.upload.graph_client.GraphClient` and one :class:`DeliveryLimits`,
and turns each :class:`Outcome` into a staged ledger row with :meth:`Outcome.as_row`;
:func:`send_chunks` is the same in one call.

How a partition is sent
-----------------------
- The events iterator is read lazily, on the consumer's thread only (Spark's partition iterator
  is not thread-safe), ``chunk_size`` events at a time. A chunk is read only when one of the
  ``max_in_flight`` sender threads is free, so at most ``max_in_flight`` chunks (plus the one being
  read) are held in memory. Outcomes are yielded as chunks finish.
- Each request is classified by :func:`classify`. ``retry``, ``throttle`` and ``unconfirmed`` (a
  2xx reply that is not a JSON object, or whose ``events_received`` / ``num_processed_entries``
  is missing or smaller than the events sent) are retried with the backoff of
  :class:`RetryPolicy` (Meta's ``estimated_time_to_regain_access`` is honoured), up to
  ``max_attempts`` requests per set of events; then the events are ``failed``, the last reply
  (truncated, secrets redacted) in the outcome's message.
- ``too_large`` (HTTP 413) splits the request in halves and resends them: a size problem, not an
  event problem. A single event that is still too large is ``rejected``.
- ``invalid`` (code 100) on several events isolates the bad ones. Meta's pointers first: an
  ``error_data.event_index``, or ``data[i]`` in the message or ``error_user_msg``, names event i,
  which is ``rejected``, and the rest is resent. Otherwise the request is split in halves,
  recursively. The isolation of one chunk may spend at most ``isolation_max_requests`` requests;
  what that budget could not isolate is ``failed`` with Meta's message (``--retry-failed`` sends
  it again).
- A stop ends the task fast: ``token`` (190), ``dataset`` (code 100 subcode 33: the dataset id is
  wrong or the token cannot reach it; no event is at fault) and the circuit breaker (every
  request has failed to connect, with no HTTP reply at all, for ``circuit_breaker_seconds``). The
  outcome of the request that caused a token or dataset stop (``failed``) is yielded; no chunk is
  read or sent any more, requests already in flight finish, and work that is not final (a retry
  that would be needed, an unsent half of a split) is abandoned: it gets no outcome, so the
  ledger shows those events as never attempted and a later run sends them. ``stop_reason``,
  ``stop_message`` and :meth:`ChunkSender.raise_for_token` let the glue fail the run with a clear
  message. The breaker is shared, per endpoint, by the tasks of one Python worker: a task that
  starts after another tripped it stops on its first connection error (one probe request).

Accounting: outside a stop, every input event is in exactly one outcome. ``attempts`` and
``latency_ms`` of an outcome count the requests spent on its events; the requests of a chunk that
was split are counted in the outcome of its first part (or of the event Meta named), so the sum of
``attempts`` over a partition's outcomes is the number of requests it made.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

from jobs.config import MAX_EVENTS_PER_REQUEST

if TYPE_CHECKING:
    from jobs.config import JobConfig, UploadConfig
    from jobs.upload.graph_client import ApiResponse

log = logging.getLogger(__name__)


# ----- classification ---------------------------------------------------------------------------
class Verdict(StrEnum):
    """What to do with the events of a request, given its reply."""

    DELIVERED = "delivered"  # HTTP 2xx without an error, confirming every event sent
    UNCONFIRMED = "unconfirmed"  # HTTP 2xx not a JSON object or with a short count: retried
    RETRY = "retry"  # 5xx, 429, connection error, timeout, transient codes
    THROTTLE = "throttle"  # rate-limit codes: retried with a longer backoff
    TOO_LARGE = "too_large"  # HTTP 413: split and resend
    INVALID = "invalid"  # code 100: bad parameter; isolate, never retry as is
    TOKEN = "token"  # code 190: stop the task
    DATASET = "dataset"  # code 100 subcode 33: wrong dataset id or permissions; stop the task
    FATAL = "fatal"  # permissions and any other 4xx: no retry


class StopReason(StrEnum):
    """Why a task stopped sending before its events were all settled."""

    TOKEN = "token"
    DATASET = "dataset"
    ENDPOINT = "endpoint"


#: SPEC §5. Codes that are worth retrying after a short backoff.
RETRY_CODES = frozenset({1, 2, 341, 368, 5000, 21009})
#: SPEC §5. Rate-limit codes: retried after a longer backoff.
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80009)})
INVALID_PARAMETER_CODE = 100
#: Code 100 with this subcode: "Object with ID ... does not exist, cannot be loaded due to
#: missing permissions, or does not support this operation" (a request-level error).
MISSING_OBJECT_SUBCODE = 33
TOKEN_CODE = 190
PAYLOAD_TOO_LARGE = 413
#: SPEC §5. Permission codes: never retried. (Any other 4xx is fatal too.)
FATAL_CODES = frozenset({200, 294})


def classify(response: ApiResponse, sent: int | None = None, dialect: str = "capi") -> Verdict:
    """The verdict for one reply to a request of ``sent`` events (SPEC §5).

    Order: no reply → retry; 190 → token (even if marked transient: stop fast); 100/33 →
    dataset; 100 about ``appsecret_proof`` (a wrong or missing app secret) → token; HTTP 413 →
    too_large; any ``is_transient: true`` → retry; throttle codes; retry codes; 100 → invalid;
    200/294 → fatal; 2xx without an error code → delivered when the body is a JSON object whose
    count (``events_received`` in capi, ``num_processed_entries`` in the legacy dialect, either
    accepted) is at least ``sent`` (not checked when ``sent`` is None), else unconfirmed; HTTP
    429 or 5xx → retry; anything else → fatal.

    >>> from jobs.upload.graph_client import ApiResponse
    >>> classify(ApiResponse(http_status=400, code=613))
    <Verdict.THROTTLE: 'throttle'>
    """
    status = response.http_status
    code = response.code
    if status is None:
        return Verdict.RETRY
    if code == TOKEN_CODE:
        return Verdict.TOKEN
    if code == INVALID_PARAMETER_CODE and response.subcode == MISSING_OBJECT_SUBCODE:
        return Verdict.DATASET
    if code == INVALID_PARAMETER_CODE and "appsecret_proof" in (response.message or ""):
        return Verdict.TOKEN  # the credentials, not an event: stop like 190
    if status == PAYLOAD_TOO_LARGE:
        return Verdict.TOO_LARGE
    if response.is_transient:
        return Verdict.RETRY
    if code in THROTTLE_CODES:
        return Verdict.THROTTLE
    if code in RETRY_CODES:
        return Verdict.RETRY
    if code == INVALID_PARAMETER_CODE:
        return Verdict.INVALID
    if code in FATAL_CODES:
        return Verdict.FATAL
    if code is None and 200 <= status < 300:
        if response.body is None:
            return Verdict.UNCONFIRMED
        if sent is not None:
            received = _events_received(response.body, dialect)
            if received is None or received < sent:
                return Verdict.UNCONFIRMED
        return Verdict.DELIVERED
    if status == 429 or status >= 500:
        return Verdict.RETRY
    return Verdict.FATAL


# ----- backoff and rate limit -------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before sending a chunk again.

    - ``retry``: full jitter, ``uniform(0, min(max_seconds, base_seconds * 2**(n-1)))`` after the
      n-th failed request.
    - ``throttle``: at least ``throttle_seconds``, doubling per attempt up to
      ``max(max_seconds, throttle_seconds)``, plus up to 50 % jitter (never below the floor, so
      throttled requests really wait longer).
    - When the reply says how long to wait (``retry_after_seconds``), wait at least that, capped at
      ``max_retry_after_seconds`` so one reply cannot park a task for hours.

    ``max_attempts`` counts requests (the first one included) for one set of events.
    """

    max_attempts: int = 8
    base_seconds: float = 1.0
    max_seconds: float = 60.0
    throttle_seconds: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    max_retry_after_seconds: float = 900.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if min(self.base_seconds, self.max_seconds, self.throttle_seconds) < 0:
            raise ValueError("backoff seconds must be >= 0")

    @classmethod
    def from_upload(cls, upload: UploadConfig, rng: random.Random | None = None) -> RetryPolicy:
        return cls(max_attempts=upload.max_attempts, base_seconds=upload.backoff_base_seconds,
                   max_seconds=upload.backoff_max_seconds,
                   throttle_seconds=upload.throttle_backoff_seconds,
                   rng=rng or random.Random())

    def delay(self, attempt: int, verdict: Verdict = Verdict.RETRY,
              retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempt``-th failed request (1 for the first)."""
        growth = 2.0 ** min(max(attempt, 1) - 1, 60)
        if verdict is Verdict.THROTTLE:
            floor = min(max(self.max_seconds, self.throttle_seconds),
                        self.throttle_seconds * growth)
            seconds = floor * (1.0 + 0.5 * self.rng.random())
        else:
            seconds = self.rng.random() * min(self.max_seconds, self.base_seconds * growth)
        if retry_after:
            seconds = max(seconds, min(retry_after, self.max_retry_after_seconds))
        return seconds


class RateLimiter:
    """A token bucket (GCRA form) shared by the threads of one task.

    :meth:`acquire` reserves the next free slot under a lock and sleeps outside it, so waiting
    threads do not block each other's bookkeeping. ``burst`` requests may go back to back.
    """

    def __init__(self, per_second: float, *, burst: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be > 0")
        self.interval = 1.0 / per_second
        self._tolerance = max(burst - 1, 0) * self.interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: float | None = None  # theoretical arrival time of the next request

    def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            arrival = now if self._next is None else max(self._next, now)
            wait_seconds = max(0.0, arrival - self._tolerance - now)
            self._next = arrival + self.interval
        if wait_seconds > 0:
            self._sleep(wait_seconds)
        return wait_seconds


# ----- settings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryLimits:
    """Settings of one task's sender. Picklable: build it on the driver, ship it to the tasks.

    ``rate_limit_per_second`` is this task's share (requests, retries included). ``sleep`` None
    means an interruptible wait (a stop or a closed iterator wakes the sleepers); tests pass a
    recorder. ``clock`` drives the rate limiter and the circuit breaker, ``wall_clock`` the
    outcome timestamps. ``circuit_breaker_seconds`` None turns the breaker off;
    ``isolation_max_requests`` is the isolation budget of one chunk.
    """

    chunk_size: int
    max_in_flight: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    dialect: str = "capi"
    rate_limit_per_second: float | None = None
    sleep: Callable[[float], Any] | None = None
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    circuit_breaker_seconds: float | None = 60.0
    isolation_max_requests: int = 100

    def __post_init__(self) -> None:
        if self.dialect not in MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"unknown dialect {self.dialect!r}")
        limit = MAX_EVENTS_PER_REQUEST[self.dialect]
        if not 1 <= self.chunk_size <= limit:
            raise ValueError(f"chunk_size must be between 1 and {limit} for {self.dialect}")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        if self.rate_limit_per_second is not None and self.rate_limit_per_second <= 0:
            raise ValueError("rate_limit_per_second must be > 0")
        if self.circuit_breaker_seconds is not None and self.circuit_breaker_seconds <= 0:
            raise ValueError("circuit_breaker_seconds must be > 0 (None: no breaker)")
        if self.isolation_max_requests < 0:
            raise ValueError("isolation_max_requests must be >= 0")

    @classmethod
    def from_config(cls, config: JobConfig, tasks: int = 1) -> DeliveryLimits:
        """Limits for one of ``tasks`` upload tasks: the global rate limit is split evenly."""
        u = config.upload
        rate = u.rate_limit_per_second / max(tasks, 1) if u.rate_limit_per_second else None
        return cls(chunk_size=config.chunk_size, max_in_flight=u.max_in_flight,
                   retry=RetryPolicy.from_upload(u), dialect=config.dialect,
                   rate_limit_per_second=rate,
                   circuit_breaker_seconds=u.circuit_breaker_seconds or None,
                   isolation_max_requests=u.isolation_max_requests)


# ----- outcomes -----------------------------------------------------------------------------------
def chunk_id(event_keys: Sequence[str]) -> str:
    """A deterministic id for a set of events in order: SHA-256 hex of the keys, NUL-separated."""
    return hashlib.sha256("\x00".join(event_keys).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """The final result for a chunk (or a part of one split off by isolation)."""

    chunk_id: str
    event_keys: tuple[str, ...]
    event_count: int
    status: str  # delivered | rejected | failed
    http_status: int | None
    error_code: int | None
    error_subcode: int | None
    error_message: str | None
    fbtrace_id: str | None
    attempts: int
    latency_ms: int
    started_at: float  # epoch seconds
    finished_at: float  # epoch seconds
    events_received: int | None

    def as_row(self) -> dict[str, Any]:
        """Plain JSON-able values (``event_keys`` as a list, times as epoch seconds)."""
        return {
            "chunk_id": self.chunk_id,
            "event_keys": list(self.event_keys),
            "event_count": self.event_count,
            "status": self.status,
            "http_status": self.http_status,
            "error_code": self.error_code,
            "error_subcode": self.error_subcode,
            "error_message": self.error_message,
            "fbtrace_id": self.fbtrace_id,
            "attempts": self.attempts,
            "latency_ms": self.latency_ms,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "events_received": self.events_received,
        }


class AccessTokenRejected(RuntimeError):
    """Meta rejected the access token (code 190): the run must stop. Holds no secret."""


class EventsClient(Protocol):
    """What the sender needs from a client (``GraphClient`` or a test fake). A client may also
    have ``redact(text) -> text`` (applied to every outcome message) and ``url`` (the key of its
    endpoint's circuit breaker)."""

    def post_events(self, payloads: Sequence[str]) -> ApiResponse: ...


_DATA_INDEX = re.compile(r"data\[(\d+)\]")
_STATUS = {Verdict.DELIVERED: "delivered", Verdict.INVALID: "rejected",
           Verdict.FATAL: "rejected", Verdict.TOO_LARGE: "rejected", Verdict.TOKEN: "failed",
           Verdict.DATASET: "failed", Verdict.RETRY: "failed", Verdict.THROTTLE: "failed",
           Verdict.UNCONFIRMED: "failed"}
_RETRIED = frozenset({Verdict.RETRY, Verdict.THROTTLE, Verdict.UNCONFIRMED})
_MAX_ERROR_MESSAGE = 1000
_MAX_REPLY_QUOTE = 300

#: Endpoints whose circuit a task of this process opened, with the (monotonic) time it did.
_OPEN_CIRCUITS: dict[str, float] = {}
_OPEN_CIRCUITS_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Work:
    """Events still to be settled, with the requests already spent on them (see module doc)."""

    keys: tuple[str, ...]
    payloads: tuple[str, ...]
    attempts: int = 0
    latency_ms: float = 0.0
    started_at: float | None = None
    reason: ApiResponse | None = None  # the invalid reply this part is being isolated for


@dataclass(frozen=True)
class _Sent:
    verdict: Verdict
    response: ApiResponse
    attempts: int
    latency_ms: float
    started_at: float
    tries: int  # requests this send made


def _named_index(response: ApiResponse, size: int) -> int | None:
    """The event Meta's error points at (``error_data.event_index``, or ``data[i]`` in the
    message or ``error_user_msg``), if it is inside the request."""
    if response.event_index is not None and response.event_index < size:
        return response.event_index
    for text in (response.message, response.user_message):
        for match in _DATA_INDEX.finditer(text or ""):
            index = int(match.group(1))
            if index < size:
                return index
    return None


def _unconfirmed_message(response: ApiResponse, sent: int, dialect: str) -> str:
    """Why a 2xx reply did not confirm the ``sent`` events, quoting the reply."""
    if response.body is None:
        return response.error or f"HTTP {response.http_status} with no JSON body"
    quote = json.dumps(response.body, sort_keys=True)[:_MAX_REPLY_QUOTE]
    received = _events_received(response.body, dialect)
    name = "events_received" if dialect == "capi" else "num_processed_entries"
    if received is None:
        return f"HTTP {response.http_status} reply names no {name} for {sent} events: {quote}"
    return (f"HTTP {response.http_status} reply confirms {received} of {sent} events "
            f"({name}): {quote}")


def _error_message(response: ApiResponse) -> str | None:
    if response.message:
        if response.user_message:
            return f"{response.message} ({response.user_message})"
        return response.message
    if response.user_message:
        return response.user_message
    if response.error:
        return response.error
    if response.http_status is not None and not 200 <= response.http_status < 300:
        return f"HTTP {response.http_status}"
    return None


def _events_received(body: dict[str, Any] | None, dialect: str) -> int | None:
    if not body:
        return None
    names = (("events_received", "num_processed_entries") if dialect == "capi"
             else ("num_processed_entries", "events_received"))
    for name in names:
        value = body.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return None


# ----- the sender ---------------------------------------------------------------------------------
class ChunkSender:
    """Sends one partition's events; single use (one sender per task).

    Attributes
    ----------
    stop_reason
        None, or why the task stopped early (:class:`StopReason`); nothing more is sent then.
    stop_message
        What the stop was about, for the run's message (no secret, no URL).
    token_outcome
        The first outcome with code 190, or None.
    stopped_by_token
        True once Meta rejected the token.
    stats
        Thread-safe counters: requests, retries, throttled, backoff_seconds,
        rate_limit_wait_seconds, isolation_splits, isolated_rejections, size_splits,
        unconfirmed_replies, connection_errors, unisolated_events.
    """

    def __init__(self, client: EventsClient, limits: DeliveryLimits) -> None:
        self.client = client
        self.limits = limits
        self.stop_reason: StopReason | None = None
        self.stop_message: str | None = None
        self.stop_outcome: Outcome | None = None
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._stats: dict[str, float] = {
            "requests": 0, "retries": 0, "throttled": 0, "backoff_seconds": 0.0,
            "rate_limit_wait_seconds": 0.0, "isolation_splits": 0, "isolated_rejections": 0,
            "size_splits": 0, "unconfirmed_replies": 0, "connection_errors": 0,
            "unisolated_events": 0}
        self._sleep: Callable[[float], Any] = (
            limits.sleep if limits.sleep is not None else self._halt.wait)
        self._limiter = (RateLimiter(limits.rate_limit_per_second, clock=limits.clock,
                                     sleep=self._sleep)
                         if limits.rate_limit_per_second else None)
        redact = getattr(client, "redact", None)
        self._redact: Callable[[str], str] = redact if callable(redact) else (lambda t: t)
        url = getattr(client, "url", None)
        self._endpoint: str | None = url if isinstance(url, str) else None
        self._replies = 0  # HTTP replies of any kind this task got
        self._streak_since: float | None = None  # first connection error since the last reply
        self._last_reply_at: float | None = None
        self._started = False

    @property
    def token_outcome(self) -> Outcome | None:
        return self.stop_outcome if self.stop_reason is StopReason.TOKEN else None

    @property
    def stopped_by_token(self) -> bool:
        return self.stop_reason is StopReason.TOKEN

    @property
    def stats(self) -> dict[str, float]:
        with self._lock:
            return dict(self._stats)

    def raise_for_token(self) -> None:
        """Raise :class:`AccessTokenRejected` if Meta rejected the token during this task."""
        o = self.token_outcome
        if o is not None:
            raise AccessTokenRejected(
                f"Meta rejected the access token (code {o.error_code}, subcode "
                f"{o.error_subcode}, fbtrace_id {o.fbtrace_id}): {o.error_message}. "
                "Upload stopped; renew the token and run again (delivered events are not resent).")

    def send(self, events: Iterable[tuple[str, str]]) -> Iterator[Outcome]:
        """Send ``(event_key, payload)`` pairs; yield outcomes as chunks finish (lazily)."""
        if self._started:
            raise RuntimeError("a ChunkSender sends one partition: make a new one")
        self._started = True
        return self._run(iter(events))

    # ----- internals --------------------------------------------------------------------------
    def _count(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._stats[name] += amount

    def _stop(self, reason: StopReason, message: str, outcome: Outcome | None = None) -> None:
        """Record the first stop and halt the task (wakes every sleeping retry)."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason, self.stop_message, self.stop_outcome = (
                    reason, message, outcome)
        self._halt.set()

    def _run(self, events: Iterator[tuple[str, str]]) -> Iterator[Outcome]:
        limits = self.limits
        pool = ThreadPoolExecutor(max_workers=limits.max_in_flight,
                                  thread_name_prefix="meta-upload")
        pending: dict[Future[list[Outcome]], int] = {}
        sequence = 0
        exhausted = False
        completed = False
        # Slow start: the first chunk goes alone, so a rejected token costs one request per
        # task; the window opens to max_in_flight once the first chunk has its answer.
        window = 1
        try:
            while True:
                while (not exhausted and len(pending) < window
                       and not self._halt.is_set()):
                    batch = list(islice(events, limits.chunk_size))
                    if not batch:
                        exhausted = True
                        break
                    keys, payloads = zip(*batch, strict=True)
                    pending[pool.submit(self._settle, _Work(keys, payloads))] = sequence
                    sequence += 1
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                window = limits.max_in_flight
                for future in sorted(done, key=pending.__getitem__):
                    del pending[future]
                    yield from future.result()
            completed = True
        finally:
            if not completed:  # closed early or failed: wake sleepers, send nothing more
                self._halt.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def _settle(self, chunk: _Work) -> list[Outcome]:
        """Send one chunk until every event in it has a final outcome (or the task stops)."""
        outcomes: list[Outcome] = []
        work = deque([chunk])
        budget = self.limits.isolation_max_requests
        spent = 0  # requests spent isolating this chunk's invalid events
        while work:
            item = work.popleft()
            if item.reason is not None and spent >= budget:
                outcomes.append(self._not_isolated(item))
                continue
            sent = self._send(item)
            if sent is None:  # stopped: abandon what is not final
                break
            if item.reason is not None:
                spent += sent.tries
            size = len(item.keys)
            if sent.verdict is Verdict.TOO_LARGE and size > 1:
                _split_in_halves(work, item, sent, item.reason)
                self._count("size_splits")
                continue
            if sent.verdict is Verdict.INVALID and size > 1:
                index = _named_index(sent.response, size)
                if index is not None:
                    outcomes.append(self._outcome(
                        item.keys[index:index + 1], "rejected", sent))
                    work.appendleft(_Work(item.keys[:index] + item.keys[index + 1:],
                                          item.payloads[:index] + item.payloads[index + 1:],
                                          reason=sent.response))
                    self._count("isolated_rejections")
                else:
                    _split_in_halves(work, item, sent, sent.response)
                    self._count("isolation_splits")
                continue
            outcome = self._outcome(item.keys, _STATUS[sent.verdict], sent)
            outcomes.append(outcome)
            if sent.verdict in (Verdict.TOKEN, Verdict.DATASET):
                break
        return outcomes

    def _send(self, item: _Work) -> _Sent | None:
        """Send ``item`` with retries; None when the task stopped before a final answer."""
        limits = self.limits
        policy = limits.retry
        attempts, latency, started = item.attempts, item.latency_ms, item.started_at
        tries = 0
        while True:
            if self._halt.is_set():
                return None
            if self._limiter is not None:
                waited = self._limiter.acquire()
                if waited:
                    self._count("rate_limit_wait_seconds", waited)
                if self._halt.is_set():
                    return None
            if started is None:
                started = limits.wall_clock()
            sent_at = limits.clock()
            response = self.client.post_events(item.payloads)
            tries += 1
            attempts += 1
            latency += response.latency_ms
            self._count("requests")
            verdict = classify(response, len(item.payloads), limits.dialect)
            if verdict in (Verdict.TOKEN, Verdict.DATASET):
                self._halt.set()  # before anything else: no new request from this task
            if response.http_status is None:
                if self._connection_failed(sent_at):
                    return None
            else:
                self._reply_arrived()
            if verdict is Verdict.UNCONFIRMED:
                self._count("unconfirmed_replies")
            if verdict in _RETRIED and tries < policy.max_attempts:
                delay = policy.delay(tries, verdict, response.retry_after_seconds)
                if response.http_status is None:
                    delay = self._until_breaker(delay)
                self._count("retries")
                if verdict is Verdict.THROTTLE:
                    self._count("throttled")
                self._count("backoff_seconds", delay)
                log.info("%d events: %s (HTTP %s, code %s); attempt %d of %d in %.1f s",
                         len(item.keys), verdict.value, response.http_status, response.code,
                         tries + 1, policy.max_attempts, delay)
                self._sleep(delay)
                continue
            return _Sent(verdict, response, attempts, latency, started, tries)

    # ----- the circuit breaker ------------------------------------------------------------------
    def _reply_arrived(self) -> None:
        with self._lock:
            self._replies += 1
            self._streak_since = None
            self._last_reply_at = self.limits.clock()
        if self._endpoint is not None and self._endpoint in _OPEN_CIRCUITS:
            with _OPEN_CIRCUITS_LOCK:
                _OPEN_CIRCUITS.pop(self._endpoint, None)

    def _connection_failed(self, sent_at: float) -> bool:
        """Count a request sent at ``sent_at`` that got no HTTP reply; True when the breaker
        trips. The streak starts when its first failed request was sent (a timeout counts from
        its start), never before the last reply."""
        seconds = self.limits.circuit_breaker_seconds
        now = self.limits.clock()
        with self._lock:
            self._stats["connection_errors"] += 1
            if self._streak_since is None:
                start = sent_at
                if self._last_reply_at is not None:
                    start = max(start, self._last_reply_at)
                self._streak_since = start
            streak = now - self._streak_since
            first_contact = self._replies == 0
        if seconds is None:
            return False
        tripped = streak >= seconds
        if not tripped and first_contact and self._endpoint is not None:
            with _OPEN_CIRCUITS_LOCK:
                opened = _OPEN_CIRCUITS.get(self._endpoint)
            # Another task of this process found the endpoint down: this probe confirms it.
            tripped = opened is not None and time.monotonic() - opened < 10 * seconds
        if tripped:
            if self._endpoint is not None:
                with _OPEN_CIRCUITS_LOCK:
                    _OPEN_CIRCUITS[self._endpoint] = time.monotonic()
            self._stop(StopReason.ENDPOINT,
                       f"every request failed on a connection error or timeout, with no HTTP "
                       f"reply, for {seconds:g} s (circuit breaker)")
        return tripped

    def _until_breaker(self, delay: float) -> float:
        """``delay``, cut so that the next request goes when the breaker's time is up."""
        seconds = self.limits.circuit_breaker_seconds
        with self._lock:
            since = self._streak_since
        if seconds is None or since is None:
            return delay
        return max(0.0, min(delay, since + seconds - self.limits.clock()))

    # ----- outcomes -----------------------------------------------------------------------------
    def _message(self, text: str | None) -> str | None:
        return None if text is None else self._redact(text)[:_MAX_ERROR_MESSAGE]

    def _not_isolated(self, item: _Work) -> Outcome:
        """A part of a chunk the isolation budget could not settle: ``failed``."""
        r = item.reason
        assert r is not None
        self._count("unisolated_events", len(item.keys))
        now = self.limits.wall_clock()
        meta = _error_message(r) or "invalid parameter"
        return Outcome(
            chunk_id=chunk_id(item.keys), event_keys=item.keys, event_count=len(item.keys),
            status="failed", http_status=r.http_status, error_code=r.code,
            error_subcode=r.subcode,
            error_message=self._message(
                f"not isolated: the isolation budget of {self.limits.isolation_max_requests} "
                f"requests for this chunk was spent (retry with --retry-failed); Meta: {meta}"),
            fbtrace_id=r.fbtrace_id, attempts=item.attempts, latency_ms=round(item.latency_ms),
            started_at=item.started_at if item.started_at is not None else now,
            finished_at=now, events_received=None)

    def _outcome(self, keys: tuple[str, ...], status: str, sent: _Sent) -> Outcome:
        r = sent.response
        if status == "delivered":
            message = None
        elif sent.verdict is Verdict.UNCONFIRMED:
            message = _unconfirmed_message(r, len(keys), self.limits.dialect)
        elif sent.verdict is Verdict.TOO_LARGE:
            detail = _error_message(r)
            message = ("HTTP 413 payload too large: this single event is over the endpoint's "
                       f"size limit ({detail})")
        else:
            message = _error_message(r)
        outcome = Outcome(
            chunk_id=chunk_id(keys),
            event_keys=keys,
            event_count=len(keys),
            status=status,
            http_status=r.http_status,
            error_code=r.code,
            error_subcode=r.subcode,
            error_message=self._message(message),
            fbtrace_id=r.fbtrace_id,
            attempts=sent.attempts,
            latency_ms=round(sent.latency_ms),
            started_at=sent.started_at,
            finished_at=self.limits.wall_clock(),
            events_received=(_events_received(r.body, self.limits.dialect)
                             if status == "delivered" else None),
        )
        if sent.verdict is Verdict.TOKEN:
            self._stop(StopReason.TOKEN, f"Meta rejected the access token (code {r.code}, "
                       f"subcode {r.subcode}, fbtrace_id {r.fbtrace_id})", outcome)
            log.error("Meta rejected the access token (code 190, fbtrace_id %s): stopping",
                      r.fbtrace_id)
        elif sent.verdict is Verdict.DATASET:
            self._stop(StopReason.DATASET,
                       f"Meta refused the dataset (code {r.code}, subcode {r.subcode}, "
                       f"fbtrace_id {r.fbtrace_id}): {outcome.error_message}", outcome)
            log.error("Meta refused the dataset or the token's permissions on it (code 100, "
                      "subcode 33, fbtrace_id %s): stopping", r.fbtrace_id)
        return outcome


def _split_in_halves(work: deque[_Work], item: _Work, sent: _Sent,
                     reason: ApiResponse | None) -> None:
    """Put ``item``'s two halves first in ``work``; the first half carries the requests
    already spent on ``item``."""
    half = len(item.keys) // 2
    work.appendleft(_Work(item.keys[half:], item.payloads[half:], reason=reason))
    work.appendleft(_Work(item.keys[:half], item.payloads[:half], sent.attempts,
                          sent.latency_ms, sent.started_at, reason))


def send_chunks(events: Iterable[tuple[str, str]], client: EventsClient,
                limits: DeliveryLimits) -> Iterator[Outcome]:
    """Send one partition's ``(event_key, payload)`` pairs; yield an :class:`Outcome` per chunk.

    A shortcut for ``ChunkSender(client, limits).send(events)``. A token stop shows as an
    outcome with ``status == "failed"`` and ``error_code == 190``; use :class:`ChunkSender` to
    get ``stop_reason`` / ``stopped_by_token`` / ``raise_for_token()``.
    """
    return ChunkSender(client, limits).send(events)
