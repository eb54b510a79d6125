"""Entry point: ``python -m jobs.backfill`` or ``spark-submit jobs/backfill.py``.

args → config (validated before Spark starts) → session → run → report. Exit codes: 0 done,
1 the run finished with failures, 2 bad settings or input (an unusable staging location too),
3 the access token was rejected, 4 Meta refused the dataset (code 100 subcode 33: a wrong
``set_id``, or the token has no permission on it), 5 the Graph API endpoint did not answer
(circuit breaker), 6 another live run holds the output's lease (``--wait`` waits for it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: spark-submit jobs/backfill.py
    # Import the package from the wheel given to --py-files (or an installed one), as the
    # executors do; else from the checkout this file is in.
    import importlib.util

    if importlib.util.find_spec("jobs") is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobs.config import PROGRESS_MODES, ConfigError, JobConfig, load_config, parse_override

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "conf" / "local.yaml"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="backfill",
        description="Backfill Meta offline conversions from mParticle batch dumps.",
    )
    p.add_argument("--config", help="YAML settings (default: conf/local.yaml when present)")
    p.add_argument("--input", action="append", metavar="PATH",
                   help="dump file, folder (searched recursively) or glob; repeatable")
    p.add_argument("--output-dir", help="folder of the Delta tables (payloads/, quarantine/, ...)")
    p.add_argument("--dialect", choices=["capi", "offline_conversions"])
    p.add_argument("--dry-run", action="store_true", default=None,
                   help="write payloads to Delta, send nothing")
    p.add_argument("--reference-time", type=int, metavar="EPOCH_SECONDS",
                   help="the run's 'now' (SPEC §3); default: the wall clock")
    p.add_argument("--max-event-age-days", type=int, metavar="N")
    p.add_argument("--from-date", metavar="YYYY-MM-DD", help="first UTC day (by event time)")
    p.add_argument("--to-date", metavar="YYYY-MM-DD", help="last UTC day (by event time)")
    p.add_argument("--base-url", help="Graph API base URL (default Meta's host)")
    p.add_argument("--set-id", help="dataset / offline event set id")
    p.add_argument("--api-version", metavar="vX.Y")
    p.add_argument("--chunk-size", type=int, metavar="N",
                   help="events per request (at most the dialect's limit)")
    p.add_argument("--max-in-flight", type=int, metavar="N", help="requests in flight per task")
    p.add_argument("--retry-failed", action="store_true", default=None,
                   help="re-send only events whose last outcome failed or was rejected")
    p.add_argument("--force", action="store_true", default=None,
                   help="ignore the ledger and send every payload again")
    p.add_argument("--wait", action="store_true", default=None,
                   help="when another run holds the output's lease, wait for it to end "
                        "(default: refuse with exit code 6)")
    p.add_argument("--master", help="Spark master for the embedded mode (ignored under "
                                    "spark-submit)")
    p.add_argument("--progress", choices=PROGRESS_MODES)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set upload.rate_limit_per_second=50")
    return p


def config_from_args(args: argparse.Namespace) -> JobConfig:
    """Merge the YAML file and the command line into one validated config."""
    overrides: dict[str, Any] = {
        "input": args.input,
        "output_dir": args.output_dir,
        "dialect": args.dialect,
        "dry_run": args.dry_run,
        "reference_time": args.reference_time,
        "mapping.max_event_age_days": args.max_event_age_days,
        "from_date": args.from_date,
        "to_date": args.to_date,
        "upload.base_url": args.base_url,
        "upload.set_id": args.set_id,
        "upload.api_version": args.api_version,
        "upload.chunk_size": args.chunk_size,
        "upload.max_in_flight": args.max_in_flight,
        "upload.retry_failed": args.retry_failed,
        "upload.force": args.force,
        "upload.wait_for_lease": args.wait,
        "spark.master": args.master,
        "progress": args.progress,
    }
    for text in args.set:
        key, value = parse_override(text)
        overrides[key] = value
    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    config = load_config(path, overrides)
    if not config.input:
        raise ConfigError("setting 'input' is required (--input PATH or input: in the config)")
    return config


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        from jobs.credentials import read_app_secret, read_token
        from jobs.upload.staging import Staging

        token = None if config.dry_run else read_token(config.upload)
        app_secret = None if config.dry_run else read_app_secret(config.upload)
        Staging(config.staging_dir).check_reachable()  # scheme, storage, credentials
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from jobs.lease import LeaseBusy, RunLease

    try:  # refuse (or wait) before Spark starts; the run itself takes the lease
        RunLease(config.staging_dir, "", config.upload.lease_expiry_seconds,
                 wait=config.upload.wait_for_lease).wait_until_free()
    except LeaseBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 6

    from jobs.conversion.listing import NoInputFiles
    from jobs.pipeline import run_backfill  # imports Spark: only after the settings are valid
    from jobs.session import DeltaNotConfigured, get_spark

    try:
        spark = get_spark(config.spark.master, config.spark.app_name, config.spark.conf)
    except DeltaNotConfigured as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = run_backfill(spark, config, token, app_secret=app_secret)
    except LeaseBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 6
    except NoInputFiles as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:  # the staging location failed after the first check
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.text(), flush=True)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
