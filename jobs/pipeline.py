"""One run of the backfill: list → convert → (upload) → ledger → report."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time

from pyspark.sql import SparkSession

from jobs import ledger
from jobs.config import JobConfig
from jobs.convert import convert
from jobs.read import list_input_files
from jobs.report import RunReport

log = logging.getLogger("backfill")


def new_run_id(now: float | None = None) -> str:
    stamp = dt.datetime.fromtimestamp(now or time.time(), dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{secrets.token_hex(3)}"


def _timestamp(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


def run_backfill(spark: SparkSession, config: JobConfig, token: str | None,
                 run_id: str | None = None) -> RunReport:
    """Run the whole job and return its report (also stored in the ``runs`` table)."""
    started = time.time()
    run_id = run_id or new_run_id(started)
    now = config.reference_time or int(started)
    mode = "dry_run" if config.dry_run else "upload"
    report = RunReport(run_id=run_id, mode=mode, status="running", dialect=config.dialect,
                       set_id=config.upload.set_id, reference_time=now,
                       tables={name: config.table(name)
                               for name in ("payloads", "quarantine", "results", "runs")})
    log.info("run %s: listing input", run_id)
    files = list_input_files(spark, config.input, config.from_date, config.to_date,
                             config.date_folder_lookback_days)
    log.info("run %s: %d input files; converting", run_id, len(files))
    counts = convert(spark, config, files, run_id, now)
    report.counts = counts.as_dict()
    report.counts["reconciles"] = int(counts.reconciles())
    report.samples = [
        r["payload"] for r in ledger.read_table(spark, config.table("payloads"))
        .orderBy("event_key").select("payload").limit(3).collect()
    ]
    if config.dry_run:
        report.status = "succeeded" if counts.reconciles() else "failed"
    else:
        from jobs.upload import upload_payloads

        upload_payloads(spark, config, token, report)
    report.seconds = round(time.time() - started, 3)
    _record(spark, config, report, started)
    return report


def _record(spark: SparkSession, config: JobConfig, report: RunReport, started: float) -> None:
    numeric = {k: int(v) for k, v in {**report.counts, **{
        f"delivery.{k}": v for k, v in report.delivery.items()}}.items()
        if isinstance(v, int | bool)}
    ledger.record_run(spark, config.table("runs"), {
        "run_id": report.run_id, "mode": report.mode, "status": report.status,
        "dialect": report.dialect, "set_id": report.set_id,
        "config_digest": config.digest(), "reference_time": report.reference_time,
        "started_at": _timestamp(started), "finished_at": _timestamp(time.time()),
        "counts": numeric, "report": report.to_json(),
    })
