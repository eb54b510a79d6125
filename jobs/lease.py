"""The run lease: at most one live run per staging location (and so per output and ledger).

A run takes the lease before any work and holds it until its report is recorded; a second run
on the same ``upload.staging_dir`` refuses (``LeaseBusy``, exit code 6) naming the live run, or
waits for it with ``--wait``. Only a run holding the lease folds staged outcomes, so a live
run's staging is never folded by another.

The lease is a sequence of generations, ``<staging_dir>/_lease/gen-<n>.json``, on any storage
the staging area supports. Taking the lease is creating the next generation object with an
exclusive create (``If-None-Match: *`` on S3, a hard link on local disk): of two runs that try
at once exactly one succeeds, and no object is ever deleted or overwritten by anyone but its
owner. The holder renews its generation (a heartbeat from a driver thread every quarter of
``upload.lease_expiry_seconds``); a generation that is released, not renewed for its expiry, or
held by a process that no longer exists on this host, is free. A holder that finds a newer
generation than its own has lost the lease (its heartbeat stalled past the expiry) and calls
``on_lost`` (the pipeline cancels the upload).

Expiry compares the holder's clock (the renewal time it wrote) with the reader's: hosts must
keep their clocks in step (NTP), well within the expiry.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from jobs.upload.staging import Staging

log = logging.getLogger("backfill.lease")
FOLDER = "_lease"
_GENERATION = re.compile(r"^gen-(\d{9})\.json$")


class LeaseBusy(RuntimeError):
    """Another live run holds the lease; the message names it."""


@dataclass(frozen=True)
class Holder:
    """What a generation object says about the run that holds it."""

    run_id: str
    host: str
    pid: int
    started_at: float
    renewed_at: float
    expiry_seconds: float
    released: bool = False

    def dead_on_this_host(self) -> bool:
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def free(self, now: float) -> bool:
        return (self.released or now - self.renewed_at > self.expiry_seconds
                or self.dead_on_this_host())

    def describe(self, now: float) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        return (f"run {self.run_id} (host {self.host}, pid {self.pid}, started {started}, last "
                f"heartbeat {max(0.0, now - self.renewed_at):.0f} s ago; its lease expires "
                f"{self.expiry_seconds:.0f} s after its last heartbeat)")


class RunLease:
    """The lease of the staging area at ``staging_dir`` for run ``run_id``."""

    def __init__(self, staging_dir: str, run_id: str, expiry_seconds: float = 120.0,
                 wait: bool = False, on_lost: Callable[[str], None] | None = None) -> None:
        self.staging = Staging(staging_dir)
        self.run_id = run_id
        self.expiry_seconds = expiry_seconds
        self.wait = wait
        self.on_lost = on_lost
        self.generation: int | None = None
        self.lost = False
        self._holder: Holder | None = None
        self._first_unreadable: tuple[int, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----- reading ----------------------------------------------------------------------------
    def generations(self) -> list[int]:
        return sorted(int(m.group(1)) for n in self.staging.names(FOLDER)
                      if (m := _GENERATION.match(n)))

    def read(self, generation: int) -> Holder | None:
        data = self.staging.read(FOLDER, _name(generation))
        if data is None:
            return None
        try:
            fields: dict[str, Any] = json.loads(data)
            return Holder(**fields)
        except (ValueError, TypeError):
            return None  # not a lease this code wrote: treated as free after its expiry

    def current(self) -> tuple[int, Holder | None]:
        """The newest generation and its holder (0, None when there is none)."""
        generations = self.generations()
        if not generations:
            return 0, None
        return generations[-1], self.read(generations[-1])

    # ----- taking and giving back -------------------------------------------------------------
    def live_holder(self) -> tuple[int, Holder | None]:
        """The newest generation, and its holder when that run is alive (else None)."""
        now = time.time()
        newest, holder = self.current()
        if newest and holder is None:
            holder = self._unreadable(newest, now)
        return newest, (holder if holder is not None and not holder.free(now) else None)

    def wait_until_free(self, poll_seconds: float | None = None) -> int:
        """Return the newest generation once no live run holds the lease; without ``wait``,
        raise ``LeaseBusy`` naming the live run instead of waiting."""
        poll = poll_seconds or min(5.0, max(0.2, self.expiry_seconds / 4))
        announced = None
        while True:
            newest, holder = self.live_holder()
            if holder is None:
                return newest
            now = time.time()
            if not self.wait:
                raise LeaseBusy(
                    f"another run is using this output (lease {self.staging.uri}/{FOLDER}): "
                    f"{holder.describe(now)}. Wait for it to finish, or re-run with --wait.")
            if announced != holder.run_id:
                log.info("waiting for %s", holder.describe(now))
                announced = holder.run_id
            time.sleep(poll)

    def acquire(self, poll_seconds: float | None = None) -> None:
        """Take the lease, or raise ``LeaseBusy`` (with ``wait``: wait until it is free)."""
        while True:
            newest = self.wait_until_free(poll_seconds)
            holder = self.read(newest) if newest else None
            now = time.time()
            mine = Holder(self.run_id, socket.gethostname(), os.getpid(), now, now,
                          self.expiry_seconds)
            if self.staging.create_exclusive(_encode(mine), FOLDER, _name(newest + 1)):
                self.generation, self._holder = newest + 1, mine
                break
            # Another run created that generation first: look again.
        if holder is not None and not holder.released:
            log.warning("took over the lease of %s: it stopped renewing it", holder.run_id)
        for old in self.generations():
            if old < newest:  # keep the previous generation for the record
                self.staging.delete(FOLDER, _name(old))
        self._thread = threading.Thread(target=self._heartbeat, name="backfill-lease",
                                        daemon=True)
        self._thread.start()

    def _unreadable(self, generation: int, now: float) -> Holder:
        """An unreadable newest generation counts as held until an expiry has passed since the
        lease folder last changed (approximated by this reader's first sight of it)."""
        first_seen = self._first_unreadable
        if first_seen is None or first_seen[0] != generation:
            first_seen = self._first_unreadable = (generation, now)
        return Holder(f"<unreadable generation {generation}>", "?", -1, first_seen[1],
                      first_seen[1], self.expiry_seconds)

    def renew(self) -> bool:
        """Renew the lease; False (and ``on_lost`` called) when a newer generation exists."""
        if self.generation is None or self._holder is None or self.lost:
            return False
        if any(g > self.generation for g in self.generations()):
            self.lost = True
            message = (f"run {self.run_id} lost the lease of {self.staging.uri}: another run "
                       "took it after this run's heartbeat stalled past the expiry")
            log.error(message)
            if self.on_lost:
                self.on_lost(message)
            return False
        self._holder = replace(self._holder, renewed_at=time.time())
        self.staging.replace(_encode(self._holder), FOLDER, _name(self.generation))
        return True

    def _heartbeat(self) -> None:
        interval = max(0.1, self.expiry_seconds / 4)
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    return
            except Exception as exc:  # storage hiccup: try again at the next beat
                log.warning("could not renew the run lease (%s); retrying", type(exc).__name__)

    def release(self) -> None:
        """Stop the heartbeat and mark the generation released (a no-op when not held)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.generation is None or self._holder is None or self.lost:
            return
        newest = self.generations()
        if newest and newest[-1] == self.generation:
            self.staging.replace(_encode(replace(self._holder, released=True,
                                                 renewed_at=time.time())),
                                 FOLDER, _name(self.generation))
        self.generation = None

    def __enter__(self) -> RunLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _name(generation: int) -> str:
    return f"gen-{generation:09d}.json"


def _encode(holder: Holder) -> bytes:
    return json.dumps(asdict(holder), sort_keys=True).encode("utf-8")
