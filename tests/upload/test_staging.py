"""The staging area on local disk and on a real S3 API (moto's server on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from jobs import ledger
from jobs.config import load_config
from jobs.tools.local_s3 import LocalS3, free_port
from jobs.upload.driver import fold_staging
from jobs.upload.staging import Staging, StagingError
from tests.helpers import NOW

AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
            "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION")


@pytest.fixture(scope="module")
def s3():
    with LocalS3().start() as server:
        yield server


@pytest.fixture
def aws_env(s3, monkeypatch):
    """The Python side finds the server and its credentials the standard way (AWS_*)."""
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance endpoint
    return s3


@pytest.fixture
def bucket(aws_env):
    name = f"staging-{uuid.uuid4().hex[:10]}"
    aws_env.create_bucket(name)
    return name


def outcome(i: int, status: str = "delivered") -> dict:
    return {"run_id": "run-a", "chunk_id": f"c{i}", "task_attempt": 7, "set_id": "555",
            "dialect": "capi", "event_count": 2, "event_keys": [f"k{i}a", f"k{i}b"],
            "status": status, "http_status": 200, "attempts": 1, "latency_ms": 5,
            "events_received": 2, "started_at": NOW, "finished_at": NOW + 1}


@pytest.mark.parametrize("form", ["path", "file-uri"])
def test_local_staging_appends_one_fsynced_file_per_attempt(tmp_path, form):
    root = tmp_path / "staging"
    staging = Staging(str(root) if form == "path" else f"file://{root}")
    assert staging.local
    with staging.writer("run-a", 3, 7) as w:
        w.write(outcome(1))
        w.write(outcome(2, "failed"))
    with open(root / "run-a" / "part-00003-7.jsonl", "a", encoding="utf-8") as f:
        f.write('{"status": "delivered", "event_keys": ["torn')  # a line cut by a crash
    assert os.listdir(root / "run-a") == ["part-00003-7.jsonl"]
    assert staging.delivered_by_earlier_attempts("run-a", 3) == {"k1a", "k1b"}
    assert staging.delivered_by_earlier_attempts("run-a", 4) == set()
    assert staging.run_ids() == ["run-a"]
    assert [r["chunk_id"] for r in staging.outcomes(staging.outcome_paths("run-a"))] == [
        "c1", "c2"]


@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_object_staging_writes_one_object_per_outcome(aws_env, bucket, scheme):
    staging = Staging(f"{scheme}://{bucket}/backfill/_staging")
    assert not staging.local
    with staging.writer("run-a", 3, 7) as w:
        w.write(outcome(1))
        # Durable the moment write() returns: visible to another client already.
        assert aws_env.filesystem().ls(f"{bucket}/backfill/_staging/run-a", detail=False) == [
            f"{bucket}/backfill/_staging/run-a/part-00003-7-000001.jsonl"]
        w.write(outcome(2, "failed"))
    with staging.writer("run-a", 3, 9) as w:  # a retried attempt of the same partition
        w.write(outcome(3))
    names = staging.names("run-a")
    assert names == ["part-00003-7-000001.jsonl", "part-00003-7-000002.jsonl",
                     "part-00003-9-000001.jsonl"]
    body = aws_env.filesystem().cat_file(f"{bucket}/backfill/_staging/run-a/{names[0]}")
    assert json.loads(body)["chunk_id"] == "c1"
    assert staging.delivered_by_earlier_attempts("run-a", 3) == {"k1a", "k1b", "k3a", "k3b"}
    assert staging.run_ids() == ["run-a"]
    staging.remove_tree("run-a")
    assert staging.run_ids() == []


def test_fold_from_object_staging_into_the_ledger_is_idempotent(spark, aws_env, bucket,
                                                                 tmp_path):
    config = load_config(None, {"input": ["x"], "output_dir": str(tmp_path / "out"),
                                "dry_run": True, "upload.staging_dir": f"s3a://{bucket}/st"})
    staging = Staging(config.staging_dir)
    with staging.writer("run-a", 0, 1) as w:
        for i in range(3):
            w.write(outcome(i))
    assert fold_staging(spark, config) == 3
    assert staging.run_ids() == []
    rows = ledger.read_table(spark, config.table("results")).collect()
    assert sorted(r["chunk_id"] for r in rows) == ["c0", "c1", "c2"]
    # The same files staged again (a crash between the ledger commit and the removal): the
    # fold inserts nothing twice.
    with staging.writer("run-a", 0, 1) as w:
        for i in range(3):
            w.write(outcome(i))
    assert fold_staging(spark, config) == 3
    assert ledger.read_table(spark, config.table("results")).count() == 3


# ----- bad settings: clear errors, no secret ------------------------------------------------
def test_a_scheme_without_an_installed_filesystem_names_the_setting():
    with pytest.raises(StagingError, match=r"setting 'upload.staging_dir': no filesystem for "
                                           r"nosuchfs://"):
        Staging("nosuchfs://bucket/staging")


def test_gcs_without_its_extra_says_which_extra(monkeypatch):
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(StagingError, match=r"mparticle-meta-backfill\[gcs\]"):
        Staging("gs://bucket/staging")


def test_a_missing_bucket_is_named(aws_env):
    with pytest.raises(StagingError, match=r"'no-such-bucket-x1' .* does not exist"):
        Staging("s3://no-such-bucket-x1/staging").check_reachable()


def test_missing_credentials_name_the_variables(aws_env, monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(StagingError, match=r"no credentials .* AWS_ACCESS_KEY_ID"):
        Staging("s3://some-bucket/staging").check_reachable()


def test_unreachable_storage_names_the_endpoint(aws_env, monkeypatch):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StagingError, match=rf"cannot reach the object store .* at {endpoint} "
                                           r"\(AWS_ENDPOINT_URL\)"):
        Staging("s3://some-bucket/staging").check_reachable()


def test_cli_refuses_a_bad_staging_location_before_spark(tmp_path, capsys):
    from jobs.backfill import main

    code = main(["--input", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--dry-run",
                 "--set", "upload.staging_dir=nosuchfs://b/st"])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: setting 'upload.staging_dir': no filesystem for nosuchfs://" in err
    assert not (tmp_path / "out").exists()

