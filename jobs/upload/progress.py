"""Upload progress, driven from the driver by Spark accumulators and the status tracker.

Tasks add their delivered / failed / rejected event counts and their retried requests to
accumulators; the driver polls them (PySpark merges a task's accumulator updates when the task
ends) together with the status tracker's task counts, and prints a live line on a terminal or a
plain line every ``log_every`` seconds in logs. No data is collected to do it.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, TextIO

from pyspark.sql import SparkSession

log = logging.getLogger("backfill.progress")


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class UploadProgress:
    """A background thread that reports ``delivered / total, rate, failures, ETA``."""

    def __init__(self, spark: SparkSession, job_group: str, total: int, mode: str = "auto",
                 stream: TextIO | None = None, interval: float = 1.0, log_every: float = 30.0):
        sc = spark.sparkContext
        self.sc = sc
        self.job_group = job_group
        self.total = total
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "log"
        self.mode = mode
        self.interval = interval if mode == "bar" else min(interval, log_every)
        self.log_every = log_every
        self.delivered = sc.accumulator(0)
        self.failed = sc.accumulator(0)
        self.rejected = sc.accumulator(0)
        self.retries = sc.accumulator(0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self.lines: list[str] = []

    def accumulators(self) -> tuple[Any, ...]:
        """What the tasks add to: (delivered, failed, rejected) event counts, retries."""
        return self.delivered, self.failed, self.rejected, self.retries

    def tasks(self) -> tuple[int, int]:
        """(completed, total) tasks of the run's newest stage."""
        tracker = self.sc.statusTracker()
        stages = []
        for job_id in tracker.getJobIdsForGroup(self.job_group):
            info = tracker.getJobInfo(job_id)
            if info is not None:
                stages.extend(info.stageIds)
        if not stages:
            return 0, 0
        stage = tracker.getStageInfo(max(stages))
        if stage is None:
            return 0, 0
        return stage.numCompletedTasks, stage.numTasks

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        done = self.delivered.value
        failures = self.failed.value + self.rejected.value
        rate = done / elapsed
        remaining = self.total - done - failures
        eta = remaining / rate if rate > 0 else None
        tasks_done, tasks = self.tasks()
        pct = 100.0 * (done + failures) / self.total if self.total else 100.0
        return (f"upload {done:,}/{self.total:,} delivered ({pct:5.1f}%), "
                f"{rate:,.0f} events/s, failures {failures:,}, retries {self.retries.value:,}, "
                f"tasks {tasks_done}/{tasks}, "
                f"ETA {format_eta(eta)}")

    def _emit(self, text: str, final: bool = False) -> None:
        self.lines.append(text)
        if self.mode == "bar":
            self.stream.write("\r" + text + ("\n" if final else ""))
            self.stream.flush()
        elif self.mode == "log":
            log.info(text)

    def _run(self) -> None:
        last_log = time.monotonic()
        while not self._stop.wait(self.interval):
            if self.mode == "log" and time.monotonic() - last_log < self.log_every:
                continue
            last_log = time.monotonic()
            self._emit(self.line())

    def start(self) -> None:
        self._started = time.monotonic()
        if self.mode != "off":
            self._thread = threading.Thread(target=self._run, name="upload-progress",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.mode != "off":
            self._emit(self.line(), final=True)
