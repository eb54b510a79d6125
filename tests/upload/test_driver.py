"""Upload acceptance (issue 3), each against the local Graph API emulator on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from jobs import ledger
from jobs.config import load_config
from jobs.pipeline import run_backfill
from jobs.tools.generate_dump import generate_dump
from jobs.tools.local_graph_api import GraphApiEmulator
from tests.helpers import NOW, REPO_ROOT

#: Whole runs of the job (Spark, its Python workers and the emulator): not in `make test-fast`.
pytestmark = pytest.mark.slow

REPO = REPO_ROOT
TOKEN = "e2e-secret-token-5f2c9"
FAST_RETRIES = {
    "upload.backoff_base_seconds": 0.01, "upload.backoff_max_seconds": 0.05,
    "upload.throttle_backoff_seconds": 0.02, "progress": "off",
}


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    root = tmp_path_factory.mktemp("dump")
    manifest = generate_dump(root / "d", 1200, seed=11, reference_time=NOW, files=3, gzip=1,
                             bad_line_rate=0.01, duplicate_batch_rate=0.02)
    return root / "d", manifest


def config_for(dump_dir, out, url, **extra):
    return load_config(None, {
        "input": [str(dump_dir)], "output_dir": str(out), "reference_time": NOW,
        "upload.base_url": url, "upload.set_id": "555", **FAST_RETRIES, **extra,
    })


def payloads_by_key(spark, config):
    rows = ledger.read_table(spark, config.table("payloads")).collect()
    return {r["event_key"]: json.loads(r["payload"]) for r in rows}


def key_of(event: dict) -> str:
    if "event_id" in event:
        return f"{event['event_id']}|{event['event_name']}"
    return None  # legacy events carry no event_id


def unsendable_keys(payloads: dict, dialect: str = "capi") -> set[str]:
    """Payloads Meta (and the emulator) would refuse for a custom attribute: a non-numeric capi
    ``custom_data.value``. SPEC §8 never sends such an attribute, so there should be none."""
    return {k for k, p in payloads.items() if dialect == "capi"
            and isinstance(p.get("custom_data", {}).get("value", 0), str)}


def stored_payloads(spark, out: Path) -> dict:
    rows = spark.read.format("delta").load(str(out / "payloads")).collect()
    return {r["event_key"]: json.loads(r["payload"]) for r in rows}


def results(spark, config):
    return ledger.read_table(spark, config.table("results")).collect()


@pytest.mark.parametrize("dialect", ["capi", "offline_conversions"])
def test_end_to_end_every_event_once_equal_to_dry_run(spark, dump, tmp_path, dialect):
    dump_dir, manifest = dump
    with GraphApiEmulator(token=TOKEN, now=NOW, seed=3).start() as emu:
        dry = config_for(dump_dir, tmp_path / "dry", emu.url, dialect=dialect, dry_run=True)
        dry_report = run_backfill(spark, dry, None)
        assert emu.requests["total"] == 0  # a dry run sends nothing
        expected = payloads_by_key(spark, dry)
        assert len(expected) == manifest.convertible

        unsendable = unsendable_keys(expected, dialect)
        assert not unsendable  # the dump's text "value" attributes are not sent (SPEC §8)

        cfg = config_for(dump_dir, tmp_path / "up", emu.url, dialect=dialect,
                         **{"upload.chunk_size": 97})
        report = run_backfill(spark, cfg, TOKEN)
        assert report.status == "succeeded", report.text()
        assert report.delivery["delivered"] == manifest.convertible - len(unsendable)
        assert report.delivery["rejected"] == len(unsendable)
        assert report.counts == dry_report.counts
        sent = [event for _, event in emu.accepted_events()]
        assert len(sent) == len(expected) - len(unsendable)  # exactly once
        assert sorted(map(json.dumps, sent)) == sorted(
            json.dumps(p) for k, p in expected.items() if k not in unsendable)
        rows = results(spark, cfg)
        assert {k for r in rows if r["status"] == "rejected" for k in r["event_keys"]} \
            == unsendable
        assert max(r["event_count"] for r in rows) <= 97

        again = run_backfill(spark, cfg, TOKEN)  # a re-run sends only what never landed
        assert again.delivery["already_delivered"] == len(expected) - len(unsendable)
        assert len(emu.accepted_events()) == len(expected) - len(unsendable)


def test_faults_complete_with_nothing_missing(spark, dump, tmp_path):
    dump_dir, _ = dump
    with GraphApiEmulator(token=TOKEN, now=NOW, seed=5, error_5xx_rate=0.10, throttle_rate=0.10,
                          reset_before_rate=0.015, reset_after_rate=0.015).start() as emu:
        cfg = config_for(dump_dir, tmp_path, emu.url, **{"upload.chunk_size": 20,
                                                         "upload.max_attempts": 12})
        report = run_backfill(spark, cfg, TOKEN)
        assert report.status == "succeeded", report.text()
        payloads = payloads_by_key(spark, cfg)
        expected = set(payloads) - unsendable_keys(payloads)
        sent = Counter(key_of(e) for _, e in emu.accepted_events())
        assert set(sent) == expected  # nothing missing, nothing extra
        duplicates = sum(n - 1 for n in sent.values())
        stats = emu.requests
        assert stats["error_5xx"] > 0 and stats["throttled"] > 0 and stats["reset_after"] > 0
        # a duplicate can only come from a response lost after the emulator recorded the chunk
        assert duplicates <= stats["reset_after"] * 20
        assert report.delivery["delivered"] == len(expected)


def test_invalid_events_isolated_and_recorded(spark, dump, tmp_path):
    dump_dir, _ = dump
    with GraphApiEmulator(token=TOKEN, now=NOW, seed=9, reject_rate=0.01).start() as emu:
        cfg = config_for(dump_dir, tmp_path, emu.url)
        report = run_backfill(spark, cfg, TOKEN)
        expected = set(payloads_by_key(spark, cfg))
        rows = results(spark, cfg)
        rejected = [r for r in rows if r["status"] == "rejected"]
        delivered = {k for r in rows if r["status"] == "delivered" for k in r["event_keys"]}
        rejected_keys = {k for r in rejected for k in r["event_keys"]}
        assert rejected and all(r["event_count"] == 1 for r in rejected)
        assert delivered | rejected_keys == expected and not delivered & rejected_keys
        assert {key_of(e) for _, e in emu.accepted_events()} == delivered
        for r in rejected:
            assert r["error_code"] == 100 and "data[" in r["error_message"]
            assert r["fbtrace_id"]
        assert report.errors[0]["code"] == 100
        assert report.delivery["rejected"] == len(rejected_keys)


def test_invalid_token_stops_fast(spark, dump, tmp_path):
    dump_dir, _ = dump
    with GraphApiEmulator(token=TOKEN, now=NOW).start() as emu:
        cfg = config_for(dump_dir, tmp_path, emu.url, **{"upload.chunk_size": 10,
                                                         "upload.partitions": 3})
        started = time.monotonic()
        report = run_backfill(spark, cfg, "expired-token")
        assert report.status == "token_rejected" and report.exit_code == 3
        assert "190" in report.message and "expired-token" not in report.text()
        assert emu.requests["total"] <= 3  # at most one request per task
        assert emu.requests["auth"] == emu.requests["total"]
        assert time.monotonic() - started < 120


def run_cli(args, env_extra=None, **kwargs):
    env = {**os.environ, "FB_ACCESS_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1",
           **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "jobs.backfill", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)


def cli_args(dump_dir, out, url, *extra):
    return ["--config", str(REPO / "conf" / "local.yaml"), "--input", str(dump_dir),
            "--output-dir", str(out), "--base-url", url, "--set-id", "777",
            "--reference-time", str(NOW), "--progress", "log",
            *[f"--set={k}={v}" for k, v in FAST_RETRIES.items()], *extra]


def test_local_cluster_and_no_secret_anywhere(spark, dump, tmp_path):
    """The same end to end on separate executor JVMs, then a scan for the token and emails."""
    dump_dir, manifest = dump
    out = tmp_path / "out"
    with GraphApiEmulator(token=TOKEN, now=NOW, seed=1).start() as emu:
        proc = run_cli(cli_args(dump_dir, out, emu.url, "--master", "local-cluster[2,1,1024]",
                                "--chunk-size", "50"))
        logs, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, logs[-3000:]
        keys = Counter(key_of(e) for _, e in emu.accepted_events())
        payloads = stored_payloads(spark, out)
        assert len(payloads) == manifest.convertible
        assert set(keys) == set(payloads) - unsendable_keys(payloads)
        assert max(keys.values()) == 1

    emails = set()
    for path in Path(dump_dir).rglob("*.txt*"):
        import gzip as gz
        opener = gz.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                emails.update(part.split('"')[0] for part in line.split('"email","identity":"')[1:])
                emails.update(part.split('"')[0] for part in line.split('"email":"')[1:])
    emails = {e for e in emails if "@" in e}
    assert len(emails) > 10
    haystack = [logs]
    for table in ("payloads", "quarantine", "results", "runs"):
        df = spark.read.format("delta").load(str(out / table))
        haystack.extend(json.dumps(r.asDict(recursive=True), default=str) for r in df.collect())
    text = "\n".join(haystack)
    assert TOKEN not in text
    leaked = [e for e in emails if e in text or e.lower() in text]
    assert not leaked, leaked[:3]


def test_driver_killed_mid_upload_then_rerun(spark, dump, tmp_path):
    dump_dir, manifest = dump
    out = tmp_path / "out"
    chunk, in_flight, tasks = 10, 2, 2
    with GraphApiEmulator(token=TOKEN, now=NOW, seed=2, latency_ms=150).start() as emu:
        args = cli_args(dump_dir, out, emu.url, "--chunk-size", str(chunk), "--max-in-flight",
                        str(in_flight), "--master", "local[2]", f"--set=upload.partitions={tasks}")
        proc = run_cli(args, start_new_session=True)
        deadline = time.monotonic() + 300
        while len(emu.accepted_events()) < 200 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Python workers, at once
        proc.wait(timeout=60)
        before = len(emu.accepted_events())
        assert 200 <= before < manifest.convertible

        rerun = run_cli(cli_args(dump_dir, out, emu.url, "--chunk-size", str(chunk),
                                 "--master", "local[2]"))
        logs, _ = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, logs[-3000:]
        sent = Counter(key_of(e) for _, e in emu.accepted_events())
        payloads = stored_payloads(spark, out)
        assert set(sent) == set(payloads) - unsendable_keys(payloads)  # nothing missing
        duplicates = sum(n - 1 for n in sent.values())
        assert duplicates <= tasks * in_flight * chunk  # at most the chunks in flight
