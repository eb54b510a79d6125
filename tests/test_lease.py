"""The run lease on local disk and on a real S3 API (moto's server on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from jobs.lease import FOLDER, LeaseBusy, RunLease
from jobs.tools.local_s3 import LocalS3


@pytest.fixture(scope="module")
def s3():
    with LocalS3().start() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def staging_dir(request, tmp_path, monkeypatch):
    if request.param == "local":
        return str(tmp_path / "staging")
    server = request.getfixturevalue("s3")
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bucket = f"lease-{uuid.uuid4().hex[:10]}"
    server.create_bucket(bucket)
    return f"s3a://{bucket}/out/_staging"


def test_a_second_run_refuses_naming_the_live_run(staging_dir):
    with RunLease(staging_dir, "run-a", expiry_seconds=60):
        with pytest.raises(LeaseBusy, match=r"another run is using this output .*: run run-a "
                                            r"\(host .*, pid \d+, .*--wait"):
            RunLease(staging_dir, "run-b", expiry_seconds=60).acquire()
    with RunLease(staging_dir, "run-b", expiry_seconds=60) as b:  # released: free again
        assert b.generation == 2


def test_exactly_one_of_many_simultaneous_runs_gets_the_lease(staging_dir):
    RunLease(staging_dir, "run-0").staging.check_reachable()
    leases = [RunLease(staging_dir, f"run-{i}", expiry_seconds=60) for i in range(6)]
    start = threading.Barrier(len(leases))
    won, refused = [], []

    def take(lease):
        start.wait()
        try:
            lease.acquire()
            won.append(lease)
        except LeaseBusy:
            refused.append(lease)

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(won) == 1 and len(refused) == 5
    finally:
        for lease in won:
            lease.release()


def test_the_heartbeat_keeps_a_live_run_s_lease(staging_dir):
    with RunLease(staging_dir, "run-a", expiry_seconds=1.0):
        time.sleep(2.5)  # more than twice the expiry: only renewals keep it
        with pytest.raises(LeaseBusy):
            RunLease(staging_dir, "run-b", expiry_seconds=1.0).acquire()


def crashed_holder(lease: RunLease, host: str, pid: int, age: float) -> None:
    """A generation left by a run that died without releasing it."""
    now = time.time() - age
    lease.staging.create_exclusive(json.dumps({
        "run_id": "run-crashed", "host": host, "pid": pid, "started_at": now, "renewed_at": now,
        "expiry_seconds": 30.0, "released": False}).encode(), FOLDER, "gen-000000001.json")


def test_a_crashed_run_s_lease_expires(staging_dir):
    b = RunLease(staging_dir, "run-b", expiry_seconds=30)
    crashed_holder(b, "another-host", 1, age=10)
    with pytest.raises(LeaseBusy, match="run-crashed"):
        b.acquire()  # not yet expired
    c = RunLease(staging_dir, "run-c", expiry_seconds=30)
    c.staging.delete(FOLDER, "gen-000000001.json")
    crashed_holder(c, "another-host", 1, age=31)
    with c:
        assert c.generation == 2


def test_a_dead_process_on_this_host_frees_its_lease_at_once(staging_dir):
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    b = RunLease(staging_dir, "run-b", expiry_seconds=30)
    crashed_holder(b, socket.gethostname(), int(gone.stdout), age=1)
    with b:
        assert b.generation == 2


def test_wait_takes_the_lease_when_the_live_run_ends(staging_dir):
    a = RunLease(staging_dir, "run-a", expiry_seconds=60)
    a.acquire()
    threading.Timer(1.0, a.release).start()
    started = time.monotonic()
    with RunLease(staging_dir, "run-b", expiry_seconds=60, wait=True) as b:
        assert b.generation == 2
    assert time.monotonic() - started >= 0.9


def test_a_holder_that_lost_its_lease_says_so(staging_dir):
    lost = []
    a = RunLease(staging_dir, "run-a", expiry_seconds=60, on_lost=lost.append)
    a.acquire()
    try:
        assert a.renew()
        a.staging.create_exclusive(b"{}", FOLDER, "gen-000000002.json")  # a newer holder
        assert not a.renew()
        assert lost and "run-a lost the lease" in lost[0]
    finally:
        a.release()


# ----- two runs on one output folder (the CLI, against the emulator with latency) -------------
@pytest.mark.slow
def test_two_runs_on_one_output_never_interleave(spark, tmp_path):
    import os
    import subprocess
    import sys
    from collections import Counter

    from jobs import ledger
    from jobs.config import load_config
    from jobs.tools.generate_dump import generate_dump
    from jobs.tools.local_graph_api import GraphApiEmulator
    from tests.helpers import NOW
    from tests.test_spark_submit import report_figure

    token = "lease-test-token-0b7e"
    dump = tmp_path / "dump"
    generate_dump(dump, 500, seed=9, reference_time=NOW, files=2)
    out = tmp_path / "out"

    def cli(url: str, *extra: str) -> subprocess.Popen:
        env = {**os.environ, "FB_ACCESS_TOKEN": token}
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.backfill", "--input", str(dump), "--output-dir",
             str(out), "--reference-time", str(NOW), "--set-id", "555", "--base-url", url,
             "--master", "local[2]", "--chunk-size", "10", "--max-in-flight", "1",
             "--progress", "off", "--set=upload.partitions=2", *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    with GraphApiEmulator(token=token, now=NOW, seed=1, latency_ms=200).start() as emu:
        first = cli(emu.url)
        try:
            deadline = time.monotonic() + 300
            while len(emu.accepted_events()) < 20 and time.monotonic() < deadline:
                assert first.poll() is None, first.stdout.read()[-3000:]
                time.sleep(0.05)
            lease = RunLease(str(out / "_staging"), "probe")
            _, holder = lease.live_holder()
            assert holder is not None  # run A holds the lease while it uploads

            second = cli(emu.url)  # started while A uploads: refuses, naming A
            refused, _ = second.communicate(timeout=120)
            assert second.returncode == 6, refused[-3000:]
            assert "another run is using this output" in refused
            assert f"run {holder.run_id} (host " in refused
            assert first.poll() is None  # A was still uploading when B refused

            waiting = cli(emu.url, "--wait")  # C waits for A, then finds nothing to send
            logs, _ = first.communicate(timeout=600)
            assert first.returncode == 0, logs[-3000:]
            after_first = Counter(f"{e['event_id']}|{e['event_name']}"
                                  for _, e in emu.accepted_events())
            waited, _ = waiting.communicate(timeout=600)
            assert waiting.returncode == 0, waited[-3000:]
            assert f"waiting for run {holder.run_id}" in waited
            assert report_figure(waited, "delivered") == 0, waited[-3000:]
        finally:
            for proc in (first,):
                if proc.poll() is None:
                    proc.kill()
        sent = Counter(f"{e['event_id']}|{e['event_name']}" for _, e in emu.accepted_events())

    assert sent == after_first  # C delivered nothing
    assert max(sent.values()) == 1  # every event once
    config = load_config(None, {"input": [str(dump)], "output_dir": str(out), "dry_run": True})
    results = ledger.read_table(spark, config.table("results")).collect()
    delivered = Counter(k for r in results if r["status"] == "delivered" for k in r["event_keys"])
    assert set(delivered) == set(sent)  # the ledger agrees with the emulator
    assert max(delivered.values()) == 1
