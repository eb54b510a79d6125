"""The upload stage: payloads → Graph API from ``mapPartitions`` → staged outcomes → ledger.

Per task: one pooled ``GraphClient``, the sending core (``jobs/upload/sending.py``) streaming the
partition iterator with a bounded number of requests in flight, and the staging area
(``jobs/upload/staging.py``: local disk or object storage) where each chunk outcome is recorded
durably the moment it is known. The driver folds staged outcomes into the ``results`` ledger after
the stage, and again at the start of the next run, so a driver killed mid-upload loses nothing but
the chunks that were in flight. The run holds the output's lease (``jobs/lease.py``) throughout,
so the staging folders it finds at its start belong to dead runs only.

Spark re-runs a failed task: the retry first reads the staging files of earlier attempts of its
partition and skips the events they delivered, so a task retry re-sends only chunks that were in
flight when the attempt died (Meta de-duplicates those on ``event_id`` + ``event_name``).
Speculation would run two copies of a task at once and is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import ledger
from jobs.config import JobConfig
from jobs.upload.executor import TaskSettings, deliver_partition
from jobs.upload.progress import UploadProgress
from jobs.upload.staging import Staging
from jobs.upload.summary import Selection, UploadSummary

log = logging.getLogger("backfill.upload")

def staged_rows(staging: Staging, paths: list[str]) -> list[dict[str, Any]]:
    """The outcomes staged in ``paths``, as rows of the ``results`` table."""
    rows = []
    for row in staging.outcomes(paths):
        for key in ("started_at", "finished_at"):
            if row.get(key) is not None:
                row[key] = dt.datetime.fromtimestamp(row[key], dt.UTC).replace(tzinfo=None)
        row["latency_ms"] = int(row.get("latency_ms") or 0)
        rows.append({k: row.get(k) for k in ledger.RESULTS_SCHEMA.fieldNames()})
    return rows


def fold_staging(spark: SparkSession, config: JobConfig, run_ids: list[str] | None = None
                 ) -> int:
    """Merge the staged outcomes of ``run_ids`` (default: every run with a staging folder)
    into the ledger, then remove their staging folders. The caller holds the lease, so no run
    that is still alive writes to them.

    Idempotent: the Delta append of a folder's files is keyed by the run and the files' names,
    so folding again after a crash between the commit and the removal inserts nothing twice.
    """
    staging = Staging(config.staging_dir)
    folded = 0
    for run_id in staging.run_ids() if run_ids is None else run_ids:
        paths = staging.outcome_paths(run_id)
        rows = staged_rows(staging, paths)
        if rows:
            names = "\n".join(sorted(p.rsplit("/", 1)[-1] for p in paths))
            batch = f"{run_id}-{hashlib.sha256(names.encode()).hexdigest()[:16]}"
            outcomes = spark.createDataFrame(rows, ledger.RESULTS_SCHEMA)
            ledger.append_results(outcomes, config.table("results"), batch)
            folded += len(rows)
        staging.remove_tree(run_id)
    return folded


def select_events(spark: SparkSession, config: JobConfig, payloads: DataFrame, total: int
                  ) -> tuple[DataFrame, Selection]:
    """The payloads to send this run, and how the others were set aside.

    Default: every event not yet delivered to this set id. ``retry_failed``: only events whose
    last outcome failed or was rejected. ``force``: everything.
    """
    if config.upload.force:
        return payloads, Selection(total)
    status = ledger.event_status(spark, config.table("results"), config.upload.set_id or "")
    joined = payloads.join(status, "event_key", "left")
    by_status = {
        (r["ledger_status"] or "new"): r["count"]
        for r in joined.groupBy("ledger_status").count().collect()
    }
    st = F.col("ledger_status")
    if config.upload.retry_failed:
        selected = joined.where(st.isin("failed", "rejected"))
        not_selected = by_status.get("new", 0)
    else:
        selected = joined.where(st.isNull() | (st != "delivered"))
        not_selected = 0
    return selected.drop("ledger_status"), Selection(
        total, already_delivered=by_status.get("delivered", 0), not_selected=not_selected)


def upload_partitions(spark: SparkSession, config: JobConfig, events: int) -> int:
    """Tasks of up to 100 chunks, at least one per core and a multiple of the cores.

    Each task starts with one chunk alone (slow start) and pays a Python worker's set-up, so
    small tasks waste the request window (README, Performance). A multiple of the cores keeps
    the last wave full. Progress and resumption do not depend on task size (outcomes are
    staged per request).
    """
    if config.upload.partitions:
        return config.upload.partitions
    cores = max(1, spark.sparkContext.defaultParallelism)
    per_task = config.chunk_size * 100
    tasks = max(cores, math.ceil(events / per_task))
    return max(1, min(math.ceil(tasks / cores) * cores, 10_000))


def check_speculation(spark: SparkSession) -> None:
    """Refuse to upload with speculation on (called before any work)."""
    if spark.sparkContext.getConf().get("spark.speculation", "false").lower() == "true":
        raise RuntimeError("spark.speculation is on: speculative copies of upload tasks would "
                           "send events twice. Run the backfill with spark.speculation=false.")


def upload_payloads(spark: SparkSession, config: JobConfig, token: str | None, run_id: str,
                    payloads: int, app_secret: str | None = None) -> UploadSummary:
    """Deliver this run's ``payloads`` (their count from the conversion) and return what the
    upload found."""
    if not token:
        raise ValueError("an access token is required to upload")
    check_speculation(spark)
    recovered = fold_staging(spark, config, [r for r in Staging(config.staging_dir).run_ids()
                                            if r != run_id])
    if recovered:
        log.info("folded %d staged outcomes of an interrupted run into the ledger", recovered)

    table = ledger.read_table(spark, config.table("payloads")).select("event_key", "payload")
    selected, selection = select_events(spark, config, table, payloads)
    if selection.to_send == 0:
        return UploadSummary(selection)

    tasks = upload_partitions(spark, config, selection.to_send)
    # The global rate limit is shared by the tasks that run at once, not by all of them.
    concurrent = max(1, min(tasks, spark.sparkContext.defaultParallelism))
    settings = TaskSettings(config=config, token=token, run_id=run_id,
                            upload_tag=config.upload.upload_tag or run_id, tasks=concurrent,
                            app_secret=app_secret)
    progress = UploadProgress(spark, run_id, selection.to_send, config.progress)
    counters = progress.accumulators()
    rdd = (selected.repartition(tasks, "event_key").select("event_key", "payload").rdd
           .mapPartitions(lambda rows: deliver_partition(settings, rows, counters)))
    spark.sparkContext.setJobGroup(run_id, f"backfill upload {run_id}")
    progress.start()
    try:
        partitions = rdd.collect()
    finally:
        progress.stop()
        fold_staging(spark, config, [run_id])
    return UploadSummary.combine(selection, partitions)
