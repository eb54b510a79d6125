"""What runs inside each upload task (executor side): no Spark SQL, no Delta imports.

One pooled ``GraphClient`` per task, the delivery core streaming the partition iterator, and a
staging file to which every chunk outcome is appended and fsync'ed as soon as it is known. The
staging folder must be reachable as a local path by the executors and the driver (local disk in
embedded mode; a shared mount such as ``/dbfs/...`` or NFS on a cluster).
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.config import JobConfig

#: The columns of the ledger's ``results`` table, in order (see ``jobs/ledger.py``).
STAGED_FIELDS = (
    "run_id", "chunk_id", "task_attempt", "set_id", "dialect", "event_count", "event_keys",
    "status", "http_status", "error_code", "error_subcode", "error_message", "fbtrace_id",
    "attempts", "latency_ms", "events_received", "started_at", "finished_at",
)


@dataclass(frozen=True)
class TaskSettings:
    """What each upload task needs; pickled into the task closure (never printed)."""

    config: JobConfig
    token: str
    run_id: str
    upload_tag: str
    tasks: int

    def __repr__(self) -> str:  # the token must not reach a log or a stack trace
        return f"TaskSettings(run_id={self.run_id!r}, tasks={self.tasks})"


def staging_folder(config: JobConfig, run_id: str) -> Path:
    return Path(config.staging_dir) / run_id


def _delivered_by_earlier_attempts(folder: Path, partition: int) -> set[str]:
    keys: set[str] = set()
    for path in glob.glob(str(folder / f"part-{partition:05d}-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:  # a line cut short by the crash
                    continue
                if row.get("status") == "delivered":
                    keys.update(row["event_keys"])
    return keys


def deliver_partition(settings: TaskSettings, rows: Iterable[Any], counters: tuple = ()
                      ) -> Iterator[dict[str, Any]]:
    """Send one partition's events; yield one summary dict for the partition.

    ``counters`` are the progress accumulators (delivered, failed, rejected events).
    """
    from pyspark import TaskContext

    from jobs.delivery import ChunkSender, DeliveryLimits
    from jobs.graph_client import GraphClient

    ctx = TaskContext.get()
    partition = ctx.partitionId() if ctx else 0
    attempt = ctx.taskAttemptId() if ctx else 0
    config = settings.config
    folder = staging_folder(config, settings.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    done = _delivered_by_earlier_attempts(folder, partition)
    events = ((r[0], r[1]) for r in rows if r[0] not in done)
    summary: dict[str, Any] = {"statuses": Counter(), "errors": {}, "token_rejected": False,
                               "skipped_from_earlier_attempts": len(done), "requests": 0}
    limits = DeliveryLimits.from_config(config, tasks=settings.tasks)
    path = folder / f"part-{partition:05d}-{attempt}.jsonl"
    with GraphClient.from_config(config, settings.token, settings.upload_tag) as client, \
            open(path, "a", encoding="utf-8") as staged:
        sender = ChunkSender(client, limits)
        for outcome in sender.send(events):
            row = outcome.as_row()
            row.update(run_id=settings.run_id, task_attempt=attempt, set_id=config.upload.set_id,
                       dialect=config.dialect)
            staged.write(json.dumps(row) + "\n")
            staged.flush()
            os.fsync(staged.fileno())
            summary["statuses"][outcome.status] += outcome.event_count
            if outcome.error_code is not None and outcome.status != "delivered":
                err = summary["errors"].setdefault(
                    str(outcome.error_code), {"events": 0, "example": outcome.error_message})
                err["events"] += outcome.event_count
            if counters:
                delivered_acc, failed_acc, rejected_acc = counters
                {"delivered": delivered_acc, "failed": failed_acc,
                 "rejected": rejected_acc}[outcome.status].add(outcome.event_count)
        summary["token_rejected"] = sender.stopped_by_token
        summary["requests"] = sender.stats.get("requests", 0)
    summary["statuses"] = dict(summary["statuses"])
    yield summary


def staged_rows(folder: Path) -> list[dict[str, Any]]:
    """Every outcome staged in ``folder``, as rows of the ``results`` table."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a torn last line: that chunk was in flight
                for key in ("started_at", "finished_at"):
                    if row.get(key) is not None:
                        row[key] = dt.datetime.fromtimestamp(row[key], dt.UTC).replace(
                            tzinfo=None)
                row["latency_ms"] = int(row.get("latency_ms") or 0)
                rows.append({k: row.get(k) for k in STAGED_FIELDS})
    return rows
