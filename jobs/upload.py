"""The upload stage: payloads → Graph API from ``mapPartitions`` → staged outcomes → ledger.

Per task: one pooled ``GraphClient``, the delivery core (``jobs/delivery.py``) streaming the
partition iterator with a bounded number of requests in flight, and a staging file to which each
chunk outcome is appended (and fsync'ed) the moment it is known. The driver folds staged
outcomes into the ``results`` ledger after the stage, and again at the start of the next run, so
a driver killed mid-upload loses nothing but the chunks that were in flight.

Spark re-runs a failed task: the retry first reads the staging files of earlier attempts of its
partition and skips the events they delivered, so a task retry re-sends only chunks that were in
flight when the attempt died (Meta de-duplicates those on ``event_id`` + ``event_name``).
Speculation would run two copies of a task at once and is refused.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import ledger
from jobs.config import JobConfig
from jobs.progress import UploadProgress
from jobs.report import RunReport
from jobs.upload_task import TaskSettings, deliver_partition, staged_rows

log = logging.getLogger("backfill.upload")

def fold_staging(spark: SparkSession, config: JobConfig) -> int:
    """Merge every staged outcome (this run's or a crashed run's) into the ledger, then remove
    the staging folders. Idempotent: merging the same outcome twice inserts it once."""
    root = Path(config.staging_dir)
    if not root.is_dir():
        return 0
    folded = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        rows = staged_rows(folder)
        if rows:
            outcomes = spark.createDataFrame(rows, ledger.RESULTS_SCHEMA)
            ledger.append_results(outcomes, config.table("results"), folder.name)
            folded += len(rows)
        shutil.rmtree(folder, ignore_errors=True)
    return folded


def select_events(spark: SparkSession, config: JobConfig, payloads: DataFrame
                  ) -> tuple[DataFrame, dict[str, int]]:
    """The payloads to send this run, and how the others were set aside.

    Default: every event not yet delivered to this set id. ``retry_failed``: only events whose
    last outcome failed or was rejected. ``force``: everything.
    """
    if config.upload.force:
        return payloads, {}
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
    return selected.drop("ledger_status"), {
        "already_delivered": by_status.get("delivered", 0), "not_selected": not_selected,
    }


def upload_partitions(spark: SparkSession, config: JobConfig, events: int) -> int:
    """Tasks of up to 100 chunks, at least one per core and a multiple of the cores.

    Each task starts with one chunk alone (slow start) and pays a Python worker's set-up, so
    small tasks waste the request window: the benchmark's upload of 138,288 payloads (P3, with
    the emulator's rejections) went from 15,800 events/s with 10 chunks per task (14 tasks) to
    18,700 with 100 (2 tasks). A multiple of the cores keeps the last wave full. Progress and
    resumption do not depend on task size (outcomes are staged per request).
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


def upload_payloads(spark: SparkSession, config: JobConfig, token: str | None,
                    report: RunReport) -> None:
    """Deliver this run's payloads and fill ``report.delivery``/``errors``/``status``."""
    if not token:
        raise ValueError("an access token is required to upload")
    check_speculation(spark)
    recovered = fold_staging(spark, config)
    if recovered:
        log.info("folded %d staged outcomes of an interrupted run into the ledger", recovered)

    payloads = ledger.read_table(spark, config.table("payloads")).select("event_key", "payload")
    total = report.counts.get("payloads", 0)
    selected, set_aside = select_events(spark, config, payloads)
    to_send = total - set_aside.get("already_delivered", 0) - set_aside.get("not_selected", 0)
    delivery = {"payloads": total, **set_aside, "to_send": to_send}
    report.delivery = delivery
    if to_send == 0:
        report.status = "nothing_to_do"
        report.message = (f"nothing left to send: all {total} payloads are already delivered"
                          f" to set {config.upload.set_id}" if not config.upload.retry_failed
                          else "nothing to retry: no failed or rejected events in the ledger")
        delivery.update(delivered=0, rejected=0, failed=0, not_attempted=0, requests=0)
        delivery["reconciles"] = True
        return

    tasks = upload_partitions(spark, config, to_send)
    # The global rate limit is shared by the tasks that run at once, not by all of them.
    concurrent = max(1, min(tasks, spark.sparkContext.defaultParallelism))
    settings = TaskSettings(config=config, token=token, run_id=report.run_id,
                            upload_tag=config.upload.upload_tag or report.run_id,
                            tasks=concurrent)
    progress = UploadProgress(spark, report.run_id, to_send, config.progress)
    counters = progress.accumulators()
    rdd = (selected.repartition(tasks, "event_key").select("event_key", "payload").rdd
           .mapPartitions(lambda rows: deliver_partition(settings, rows, counters)))
    spark.sparkContext.setJobGroup(report.run_id, f"backfill upload {report.run_id}")
    progress.start()
    try:
        summaries = rdd.collect()
    finally:
        progress.stop()
        fold_staging(spark, config)
    _summarize(report, delivery, summaries, to_send)


def _summarize(report: RunReport, delivery: dict[str, Any], summaries: list[dict[str, Any]],
               to_send: int) -> None:
    statuses: Counter[str] = Counter()
    errors: dict[str, dict[str, Any]] = {}
    token_rejected = False
    requests = 0
    for s in summaries:
        statuses.update(s["statuses"])
        token_rejected |= s["token_rejected"]
        requests += s["requests"]
        for code, e in s["errors"].items():
            agg = errors.setdefault(code, {"code": int(code), "events": 0,
                                           "example": e["example"]})
            agg["events"] += e["events"]
    delivered, rejected, failed = (statuses.get(k, 0) for k in ("delivered", "rejected",
                                                                 "failed"))
    not_attempted = to_send - delivered - rejected - failed
    delivery.update(delivered=delivered, rejected=rejected, failed=failed,
                    not_attempted=not_attempted, requests=requests)
    delivery["reconciles"] = not_attempted >= 0 and (token_rejected or not_attempted == 0)
    report.errors = sorted(errors.values(), key=lambda e: -e["events"])
    if token_rejected:
        report.status = "token_rejected"
        report.message = ("the access token was rejected (Meta code 190): the upload stopped; "
                          "renew the token and re-run, delivered events will not be sent again")
    elif failed or not delivery["reconciles"]:
        report.status = "failed"
        report.message = (f"{failed} events failed after retries; re-run (or --retry-failed) "
                          "to send them again")
    else:
        report.status = "succeeded"
