"""One run of the backfill: list → convert → (upload) → ledger → report."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import ledger
from jobs.config import JobConfig
from jobs.conversion.convert import convert
from jobs.conversion.listing import InputFile, expiry_date, list_input_files
from jobs.lease import RunLease
from jobs.report import RunReport
from jobs.upload.staging import hadoop_uri
from jobs.upload.summary import UploadSummary

log = logging.getLogger("backfill")


def new_run_id(now: float | None = None) -> str:
    stamp = dt.datetime.fromtimestamp(now or time.time(), dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{secrets.token_hex(3)}"


def _timestamp(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


def run_backfill(spark: SparkSession, config: JobConfig, token: str | None,
                 run_id: str | None = None, app_secret: str | None = None) -> RunReport:
    """Run the whole job and return its report (also stored in the ``runs`` table).
    ``app_secret``, when given, makes the upload send ``appsecret_proof``.

    The run holds the staging location's lease (``jobs/lease.py``) from before the listing to
    after its report is recorded; ``LeaseBusy`` when another live run holds it.
    """
    started = time.time()
    run_id = run_id or new_run_id(started)

    def lost(message: str) -> None:  # stop sending (the upload fails): another run owns it now
        spark.sparkContext.cancelJobGroup(run_id)

    lease = RunLease(config.staging_dir, run_id, config.upload.lease_expiry_seconds,
                     wait=config.upload.wait_for_lease, on_lost=lost)
    lease.staging.check_reachable()
    with lease:
        return _run(spark, config, token, run_id, started, app_secret)


def _run(spark: SparkSession, config: JobConfig, token: str | None, run_id: str,
         started: float, app_secret: str | None) -> RunReport:
    now = config.reference_time or int(started)
    mode = "dry_run" if config.dry_run else "upload"
    report = RunReport(run_id=run_id, mode=mode, status="running", dialect=config.dialect,
                       set_id=config.upload.set_id, reference_time=now,
                       tables={name: config.table(name)
                               for name in ("payloads", "quarantine", "results", "runs")})
    if not config.dry_run:
        from jobs.upload.driver import check_speculation

        check_speculation(spark)  # fail before the pass over the input, not after
    log.info("run %s: listing input", run_id)
    expiry = (expiry_date(now, config.mapping.max_event_age_days)
              if config.prune_expired_date_folders else None)
    listing = list_input_files(spark, config.input, config.from_date, config.to_date,
                               config.date_folder_lookback_days,
                               exclude=(config.output_dir, hadoop_uri(config.staging_dir)),
                               expiry=expiry)
    files = listing.paths
    report.expired_files_skipped = listing.expired_files
    report.expired_bytes_skipped = listing.expired_bytes
    if listing.expired_files:
        oldest = (dt.date.fromisoformat(expiry or "") -
                  dt.timedelta(days=config.date_folder_lookback_days)).isoformat()
        report.expired_before = oldest
    report.input_fingerprint = input_fingerprint(listing.files, config, now)
    previous = None if config.dry_run else reusable_run(spark, config, report.input_fingerprint,
                                                        now)
    if previous is not None:
        log.info("run %s: input and settings unchanged since %s: reusing its payloads",
                 run_id, previous.run_id)
        report.counts = dict(previous.counts)
        report.payloads_run_id = previous.payloads_run_id
        report.notes.append(f"input and settings unchanged since run {previous.run_id}: "
                            "its payloads were reused (no pass over the input)")
    else:
        log.info("run %s: %d input files; converting", run_id, len(files))
        counts = convert(spark, config, listing.files, run_id, now)
        report.counts = counts.as_dict()
        report.counts["reconciles"] = int(counts.reconciles())
        report.notes.extend(f"file {path} could not be read (quarantined as corrupt_file): "
                            f"{why}" for path, why in sorted(counts.corrupt_files.items()))
        report.notes.extend(counts.notes)
        report.payloads_run_id = run_id
    report.samples = [
        r["payload"] for r in ledger.read_table(spark, config.table("payloads"))
        .orderBy("event_key").select("payload").limit(3).collect()
    ]
    upload = None
    if not config.dry_run:
        from jobs.upload.driver import upload_payloads

        upload = upload_payloads(spark, config, token, run_id, report.counts.get("payloads", 0),
                                 app_secret=app_secret)
        report.delivery = upload.delivery()
        report.errors = [e.as_dict() for e in upload.errors]
    report.status, report.message = run_status(report.counts, upload, config)
    if not report.counts.get("reconciles"):
        report.notes.append("the conversion counts do not reconcile (SPEC §7): see above")
    report.seconds = round(time.time() - started, 3)
    _record(spark, config, report, started)
    return report


def run_status(counts: dict[str, int], upload: UploadSummary | None,
               config: JobConfig) -> tuple[str, str | None]:
    """The run's status and message: the one place that decides them."""
    if not counts.get("reconciles"):
        return "failed", None
    if upload is None:
        return "succeeded", None
    if upload.selection.to_send == 0:
        if config.upload.retry_failed:
            return "nothing_to_do", "nothing to retry: no failed or rejected events in the ledger"
        return "nothing_to_do", (f"nothing left to send: all {upload.selection.payloads} "
                                 f"payloads are already delivered to set {config.upload.set_id}")
    if upload.token_rejected:
        return "token_rejected", ("the access token was rejected (Meta code 190, or code 100 "
                                  "for a wrong appsecret_proof): the upload stopped; renew the "
                                  "token (or fix the app secret) and re-run, delivered events "
                                  "will not be sent again")
    if upload.dataset_rejected:
        return "dataset_rejected", (
            f"Meta refused dataset {config.upload.set_id} (code 100, subcode 33: the object "
            "does not exist, or the access token has no permission on it): the upload stopped "
            f"and no event was rejected ({upload.not_attempted + upload.failed} events not "
            "delivered); check upload.set_id and the token's permissions on that dataset, then "
            "re-run")
    if upload.endpoint_unreachable:
        return "endpoint_unreachable", (
            f"the Graph API endpoint {endpoint(config.upload.base_url)} did not answer: every "
            "request of a task failed on a connection error or timeout for "
            f"{config.upload.circuit_breaker_seconds:g} s (circuit breaker); the upload "
            f"stopped, {upload.not_attempted + upload.failed} events were not delivered and a "
            "re-run sends them")
    if upload.failed or not upload.reconciles:
        unconfirmed = (f" ({upload.unconfirmed_replies} HTTP 200 replies did not confirm the "
                       "events sent)" if upload.unconfirmed_replies else "")
        return "failed", (f"{upload.failed} events failed after retries{unconfirmed}; re-run "
                          "(or --retry-failed) to send them again")
    return "succeeded", None


def endpoint(base_url: str) -> str:
    """The base URL as it may be shown: scheme, host, port and path, no user info or query."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


def input_fingerprint(files: Sequence[InputFile], config: JobConfig, now: int) -> str:
    """What makes a conversion's output: the files (path, size, mtime), the settings, the code
    version and, to the hour, the reference time."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        code = version("mparticle-meta-backfill")
    except PackageNotFoundError:
        code = "unknown"
    stats = sorted((f.path, f.length, f.modified) for f in files)
    text = json.dumps([stats, config.digest(), code, config.from_date, config.to_date])
    return hashlib.sha256(text.encode()).hexdigest()


def reusable_run(spark: SparkSession, config: JobConfig, fingerprint: str,
                 now: int) -> RunReport | None:
    """The last run whose payloads are still in the ``payloads`` table and were made from the
    same input and settings, within an hour of ``now`` (events age out of Meta's window)."""
    runs_at, payloads_at = config.table("runs"), config.table("payloads")
    if not (ledger.table_exists(spark, runs_at) and ledger.table_exists(spark, payloads_at)):
        return None
    row = (ledger.read_table(spark, runs_at).orderBy(F.col("started_at").desc())
           .select("report").first())
    if row is None:
        return None
    last = RunReport.from_json(row["report"])
    if (last.input_fingerprint != fingerprint or abs(last.reference_time - now) > 3600
            or not last.counts.get("reconciles")):
        return None
    current = ledger.read_table(spark, payloads_at).select("run_id").limit(1).collect()
    if current and current[0]["run_id"] != last.payloads_run_id:
        return None
    if not current and last.counts.get("payloads"):
        return None
    return last


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
