"""What runs inside each upload task (executor side): no Spark SQL, no Delta imports.

One pooled ``GraphClient`` per task, the delivery core streaming the partition iterator, and the
staging area (``jobs/upload/staging.py``) where every chunk outcome is recorded durably as soon as
it is known: a local fsync'ed file or one object per outcome on object storage. The staging
location must be the same for the executors and the driver (object storage, or a shared mount).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jobs.config import JobConfig
from jobs.upload.staging import Staging
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
    staging = Staging(config.staging_dir)
    done = staging.delivered_by_earlier_attempts(settings.run_id, partition)
    events = ((r[0], r[1]) for r in rows if r[0] not in done)
    summary = PartitionSummary(skipped_from_earlier_attempts=len(done))
    limits = DeliveryLimits.from_config(config, tasks=settings.tasks)
    with GraphClient.from_config(config, settings.token, settings.upload_tag,
                                 settings.app_secret) as client, \
            staging.writer(settings.run_id, partition, attempt) as staged:
        sender = ChunkSender(client, limits)
        for outcome in sender.send(events):
            row = outcome.as_row()
            row.update(run_id=settings.run_id, task_attempt=attempt, set_id=config.upload.set_id,
                       dialect=config.dialect)
            staged.write(row)
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
