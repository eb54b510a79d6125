"""The whole job against faulty endpoints: run status, exit code, ledger and report.

Each test uploads a small dump with ``jobs.pipeline.run_backfill`` to one of the fault servers of
``tests/upload/fault_servers.py`` on 127.0.0.1 (or to a port nobody listens on).
"""

from __future__ import annotations

import json
import logging
import socket

import pytest

from jobs import ledger
from jobs.pipeline import run_backfill
from jobs.tools.generate_dump import generate_dump
from jobs.upload.graph_client import appsecret_proof
from jobs.upload.redaction import wire_forms
from tests.helpers import NOW, upload_config
from tests.upload import fault_servers as fs

#: Whole runs of the job (Spark, its Python workers and the emulator): not in `make test-fast`.
pytestmark = pytest.mark.slow

TOKEN = "EAAB-failure-token-91c3"
FAST = {"upload__backoff_base_seconds": 0.01, "upload__backoff_max_seconds": 0.02,
        "upload__throttle_backoff_seconds": 0.02}


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    root = tmp_path_factory.mktemp("failures") / "d"
    manifest = generate_dump(root, 160, seed=21, reference_time=NOW, files=2,
                             bad_line_rate=0.0, edge_case_rate=0.0, duplicate_batch_rate=0.0)
    return root, manifest


def results(spark, config) -> list:
    if not ledger.table_exists(spark, config.table("results")):
        return []
    return ledger.read_table(spark, config.table("results")).collect()


def test_dataset_or_permissions_rejected_stops_fast_and_rejects_nothing(spark, dump, tmp_path):
    dump_dir, _ = dump
    with fs.FaultServer(fs.dataset_missing) as srv:
        cfg = upload_config(dump_dir, tmp_path, srv.url, upload__chunk_size=10,
                            upload__partitions=2, **FAST)
        report = run_backfill(spark, cfg, TOKEN)
    assert report.status == "dataset_rejected" and report.exit_code == 4
    assert len(srv.requests) <= 2 * 2  # at most two requests per task
    message = report.message or ""
    assert "555" in message and "dataset" in message and "permission" in message
    d = report.delivery
    assert d["rejected"] == 0 and d["delivered"] == 0
    assert d["failed"] + d["not_attempted"] == d["to_send"] > 0
    assert not [r for r in results(spark, cfg) if r["status"] == "rejected"]
    assert "dataset" in report.text()


@pytest.mark.parametrize("responder", [fs.short_count(1), fs.text_200(b"OK")],
                         ids=["short_count", "text"])
def test_a_200_that_does_not_confirm_the_events_fails_the_run(spark, dump, tmp_path,
                                                               responder):
    dump_dir, _ = dump
    with fs.FaultServer(responder) as srv:
        cfg = upload_config(dump_dir, tmp_path, srv.url, upload__chunk_size=40,
                            upload__max_attempts=2, **FAST)
        report = run_backfill(spark, cfg, TOKEN)
    assert report.status == "failed" and report.exit_code == 1, report.text()
    d = report.delivery
    assert d["delivered"] == 0 and d["failed"] == d["to_send"] > 0
    assert d["unconfirmed_replies"] == len(srv.requests) == d["requests"]
    assert "HTTP 200 replies not confirming the events" in report.text()
    rows = results(spark, cfg)
    assert rows and all(r["status"] == "failed" and r["http_status"] == 200 for r in rows)
    assert all("HTTP 200" in r["error_message"] for r in rows)


def test_failed_unconfirmed_events_are_sent_again_by_the_next_run(spark, dump, tmp_path):
    dump_dir, _ = dump
    with fs.FaultServer(fs.short_count(1)) as srv:
        cfg = upload_config(dump_dir, tmp_path, srv.url, upload__max_attempts=1, **FAST)
        first = run_backfill(spark, cfg, TOKEN)
        assert first.status == "failed"
        srv.respond = fs.ok_count
        second = run_backfill(spark, cfg, TOKEN)
    assert second.status == "succeeded", second.text()
    assert second.delivery["delivered"] == first.delivery["failed"]


def test_413_splits_requests_and_the_run_succeeds(spark, dump, tmp_path):
    dump_dir, _ = dump
    with fs.FaultServer(fs.too_large_above(7)) as srv:
        cfg = upload_config(dump_dir, tmp_path, srv.url, upload__chunk_size=50, **FAST)
        report = run_backfill(spark, cfg, TOKEN)
    assert report.status == "succeeded" and report.exit_code == 0, report.text()
    d = report.delivery
    assert d["delivered"] == d["to_send"] > 0 and d["rejected"] == d["failed"] == 0
    accepted = sum(r.events for r in srv.requests if r.events <= 7)
    assert accepted == d["delivered"]  # every event landed once


def test_endpoint_down_trips_the_circuit_breaker(spark, dump, tmp_path):
    dump_dir, _ = dump
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    cfg = upload_config(dump_dir, tmp_path, url, upload__chunk_size=10, upload__partitions=2,
                        upload__max_attempts=100_000, upload__circuit_breaker_seconds=1,
                        **FAST)
    report = run_backfill(spark, cfg, TOKEN)
    assert report.status == "endpoint_unreachable" and report.exit_code == 5, report.text()
    message = report.message or ""
    assert url in message and "/v26.0" not in message and TOKEN not in report.text()
    d = report.delivery
    assert d["not_attempted"] == d["to_send"] > 0  # nothing settled: a later run sends all
    assert d["delivered"] == d["failed"] == d["rejected"] == 0
    assert d["retries"] > 0 and d["connection_errors"] > 0
    assert "retries" in report.text()


ODD_TOKEN = 'EAAB/odd+tok=en&x y%z"q\\é~91'
APP_SECRET = "app/secret+7c1e="


@pytest.mark.parametrize("body_format", ["form", "json"])
def test_an_echoed_request_leaks_no_secret(spark, dump, tmp_path, caplog, body_format):
    dump_dir, _ = dump
    caplog.set_level(logging.INFO)
    with fs.FaultServer(fs.echo_body()) as srv:
        cfg = upload_config(dump_dir, tmp_path, srv.url, upload__body_format=body_format,
                            upload__chunk_size=1000, **FAST)
        report = run_backfill(spark, cfg, ODD_TOKEN, app_secret=APP_SECRET)
    assert report.delivery["rejected"] == report.delivery["to_send"] > 0
    assert srv.requests[0].fields["access_token"] == ODD_TOKEN
    rows = results(spark, cfg)
    assert any("[redacted]" in (r["error_message"] or "") for r in rows)
    runs = ledger.read_table(spark, cfg.table("runs")).collect()
    haystack = "\n".join([
        report.text(), caplog.text,
        *(json.dumps(r.asDict(recursive=True), default=str) for r in rows + runs)])
    for secret in (ODD_TOKEN, APP_SECRET, appsecret_proof(ODD_TOKEN, APP_SECRET)):
        for form in wire_forms(secret):
            assert form not in haystack, form


def test_progress_line_shows_failures_and_retries(spark):
    from jobs.upload.progress import UploadProgress

    progress = UploadProgress(spark, "group-x", 100, mode="off")
    delivered, failed, _rejected, retries = progress.accumulators()
    delivered.add(10)
    failed.add(3)
    retries.add(42)
    progress.start()
    line = progress.line()
    progress.stop()
    assert "10/100 delivered" in line and "failures 3" in line and "retries 42" in line
