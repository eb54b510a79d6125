"""What runs inside each upload task (executor side): no Spark SQL, no Delta imports.

One pooled ``GraphClient`` per task, the delivery core streaming the partition iterator, and a
staging file to which every chunk outcome is appended and fsync'ed as soon as it is known. The
staging folder must be reachable as a local path by the executors and the driver (local disk in
embedded mode; a shared mount such as ``/dbfs/...`` or NFS on a cluster).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.config import JobConfig
from jobs.upload.summary import PartitionSummary


@dataclass(frozen=True)
class TaskSettings:
    """What each upload task needs; pickled into the task closure (never printed)."""

    config: JobConfig
    token: str
    run_id: str
    upload_tag: str
    tasks: int
    app_secret: str | None = None

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


def deliver_partition(settings: TaskSettings, rows: Iterable[Any], counters: tuple[Any, ...] = ()
                      ) -> Iterator[PartitionSummary]:
    """Send one partition's events; yield the partition's summary.

    ``counters`` are the progress accumulators (delivered, failed, rejected events, and
    optionally retries).
    """
    from pyspark import TaskContext

    from jobs.upload.graph_client import GraphClient
    from jobs.upload.sending import ChunkSender, DeliveryLimits

    ctx = TaskContext.get()
    partition = ctx.partitionId() if ctx else 0
    attempt = ctx.taskAttemptId() if ctx else 0
    config = settings.config
    folder = staging_folder(config, settings.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    done = _delivered_by_earlier_attempts(folder, partition)
    events = ((r[0], r[1]) for r in rows if r[0] not in done)
    summary = PartitionSummary(skipped_from_earlier_attempts=len(done))
    limits = DeliveryLimits.from_config(config, tasks=settings.tasks)
    path = folder / f"part-{partition:05d}-{attempt}.jsonl"
    with GraphClient.from_config(config, settings.token, settings.upload_tag,
                                 settings.app_secret) as client, \
            open(path, "a", encoding="utf-8") as staged:
        sender = ChunkSender(client, limits)
        for outcome in sender.send(events):
            row = outcome.as_row()
            row.update(run_id=settings.run_id, task_attempt=attempt, set_id=config.upload.set_id,
                       dialect=config.dialect)
            staged.write(json.dumps(row) + "\n")
            staged.flush()
            os.fsync(staged.fileno())
            summary.add(outcome.status, outcome.event_count, outcome.error_code,
                        outcome.error_message)
            if counters:
                {"delivered": counters[0], "failed": counters[1],
                 "rejected": counters[2]}[outcome.status].add(outcome.event_count)
        stats = sender.stats
        summary.token_rejected = sender.stop_reason == "token"
        summary.dataset_rejected = sender.stop_reason == "dataset"
        summary.endpoint_unreachable = sender.stop_reason == "endpoint"
        for name in ("requests", "retries", "unconfirmed_replies", "connection_errors"):
            setattr(summary, name, int(stats.get(name, 0)))
        if len(counters) > 3:
            counters[3].add(summary.retries)
    yield summary
