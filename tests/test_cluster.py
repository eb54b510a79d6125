"""The job on a real Spark standalone cluster with everything on a real S3 API.

A master and two workers started with ``spark-class`` (1 core, 1 GiB, their own work and local
folders each), moto's S3 server and the Graph API emulator, all on 127.0.0.1. The wheel is
``spark-submit``ted (``--py-files``) with a Python that cannot see the checkout; the input, every
Delta table and the staging area are on ``s3a://``, so nothing can depend on one machine's disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter

import pytest

from jobs import ledger
from jobs.config import load_config
from jobs.pipeline import run_backfill
from jobs.tools.cluster_demo import StandaloneCluster, s3_job_conf, submit_command
from jobs.tools.generate_dump import generate_dump
from jobs.tools.local_graph_api import GraphApiEmulator
from jobs.tools.local_s3 import LocalS3
from tests import test_spark_submit as spark_submit
from tests.helpers import NOW
from tests.test_spark_submit import failure, needs_spark_submit, report_figure

pytestmark = [pytest.mark.slow, needs_spark_submit]
# The wheel under a .zip name and a Python that sees the dependencies but not the checkout.
wheel = spark_submit.wheel
py_files = spark_submit.py_files
cluster_python = spark_submit.cluster_python
TOKEN = "cluster-secret-token-61d0a"
SET_ID = "777"
JOB_ARGS = ["--reference-time", str(NOW), "--set-id", SET_ID, "--progress", "off",
            "--set=upload.backoff_base_seconds=0.01", "--set=upload.backoff_max_seconds=0.05"]


@pytest.fixture(scope="module")
def s3():
    with LocalS3().start() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with StandaloneCluster(tmp_path_factory.mktemp("standalone")).start() as running:
        yield running


@pytest.fixture(scope="module")
def bucket(s3):
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(name)
    return name


@pytest.fixture(scope="module")
def dump(tmp_path_factory, s3, bucket):
    """A small dump, local (for the embedded dry run) and in the bucket (for the cluster)."""
    root = tmp_path_factory.mktemp("dump") / "d"
    manifest = generate_dump(root, 600, seed=5, reference_time=NOW, files=4, gzip=1,
                             bad_line_rate=0.01)
    s3.upload(root, f"s3a://{bucket}/dump/")
    return root, f"s3a://{bucket}/dump/", manifest


@pytest.fixture(scope="module")
def dry_run_payloads(spark, dump, tmp_path_factory):
    root, _, _ = dump
    out = tmp_path_factory.mktemp("dry") / "out"
    config = load_config(None, {"input": [str(root)], "output_dir": str(out), "dry_run": True,
                                "reference_time": NOW, "progress": "off"})
    run_backfill(spark, config, None)
    rows = ledger.read_table(spark, config.table("payloads")).collect()
    return {r["event_key"]: json.loads(r["payload"]) for r in rows}


def sendable(payloads: dict) -> set[str]:
    """capi rejects a non-numeric custom_data.value (SPEC §8 forwards it): the rest lands."""
    return {k for k, p in payloads.items()
            if not isinstance(p.get("custom_data", {}).get("value", 0), str)}


def keys(emulator) -> Counter:
    return Counter(f"{e['event_id']}|{e['event_name']}" for _, e in emulator.accepted_events())


def start(cluster, py_files, cluster_python, s3, cwd, args):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET",
                        "PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR")}
    env.update(s3.env(), FB_ACCESS_TOKEN=TOKEN, PYSPARK_PYTHON=str(cluster_python),
               AWS_EC2_METADATA_DISABLED="true")
    cmd = submit_command(py_files, cluster.url, {**s3_job_conf(s3), "spark.log.level": "WARN"},
                         [*JOB_ARGS, *args])
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc, timeout=600):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_standalone_cluster_with_input_tables_and_staging_on_s3(
        cluster, s3, bucket, dump, dry_run_payloads, py_files, cluster_python, tmp_path):
    _, input_uri, _ = dump
    out = f"s3a://{bucket}/out"
    with GraphApiEmulator(token=TOKEN, now=NOW, seed=3).start() as emulator:
        args = ["--input", input_uri, "--output-dir", out, "--base-url", emulator.url,
                "--chunk-size", "50"]
        done = finish(start(cluster, py_files, cluster_python, s3, tmp_path, args))
        assert done.returncode == 0, failure(done)
        assert f"using the launcher's Spark session (master: {cluster.url})" in done.stdout, \
            failure(done)
        sent = keys(emulator)
        # Delivery equals the dry run's payloads (less the ones Meta rejects), each once.
        assert set(sent) == sendable(dry_run_payloads)
        assert max(sent.values()) == 1
        assert report_figure(done.stdout, "delivered") == len(sent)

        fs = s3.filesystem()
        for table in ("payloads", "quarantine", "results", "runs"):
            assert fs.exists(f"{bucket}/out/{table}/_delta_log/00000000000000000000.json"), table
        staged = [p for p in fs.ls(f"{bucket}/out/_staging", detail=False)
                  if not p.endswith("/_lease")]
        assert staged == []  # folded into the ledger and removed

        rerun = finish(start(cluster, py_files, cluster_python, s3, tmp_path, args))
        assert rerun.returncode == 0, failure(rerun)
        # The ledger on S3 knew every delivered event: only the rejected ones are tried again.
        assert report_figure(rerun.stdout, "already delivered") == len(sent), failure(rerun)
        assert report_figure(rerun.stdout, "delivered") == 0
        assert keys(emulator) == sent
    assert TOKEN not in done.stdout + done.stderr + rerun.stdout + rerun.stderr


def test_driver_killed_mid_upload_on_the_cluster_then_rerun(
        cluster, s3, bucket, dump, dry_run_payloads, py_files, cluster_python, tmp_path):
    _, input_uri, _ = dump
    out = f"s3a://{bucket}/killed"
    chunk, in_flight, tasks = 5, 2, 2
    with GraphApiEmulator(token=TOKEN, now=NOW, seed=4, latency_ms=300).start() as emulator:
        args = ["--input", input_uri, "--output-dir", out, "--base-url", emulator.url,
                "--chunk-size", str(chunk), "--max-in-flight", str(in_flight),
                f"--set=upload.partitions={tasks}"]
        proc = start(cluster, py_files, cluster_python, s3, tmp_path, args)
        deadline = time.monotonic() + 400
        while len(emulator.accepted_events()) < 60 and time.monotonic() < deadline:
            assert proc.poll() is None, failure(finish(proc))
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # spark-submit's JVM and the Python driver
        finish(proc, timeout=60)
        before = len(emulator.accepted_events())
        staged = s3.filesystem().find(f"{bucket}/killed/_staging")
        assert any("/part-" in p for p in staged)  # the dead run's outcomes, on S3
        assert 60 <= before < len(sendable(dry_run_payloads))

        rerun = finish(start(cluster, py_files, cluster_python, s3, tmp_path, args))
        assert rerun.returncode == 0, failure(rerun)
        sent = keys(emulator)
        assert set(sent) == sendable(dry_run_payloads)  # nothing missing
        duplicates = sum(n - 1 for n in sent.values())
        assert duplicates <= tasks * in_flight * chunk  # at most the chunks in flight
