"""``make cluster-demo``: the job as it runs in production, on this machine, with real servers.

Starts moto's S3 server (``jobs/tools/local_s3.py``), a Spark standalone master and two workers
(``spark-class``, each worker 1 core and 1 GiB with its own work and local folders), and the
local Graph API emulator, all on 127.0.0.1; copies the bundled sample dump into a bucket;
``spark-submit``s the wheel (``make wheel``) with the input, every Delta table and the staging
area on ``s3a://``; prints the report; runs again to show that nothing is sent twice; stops
everything. ``StandaloneCluster`` is also what ``tests/test_cluster.py`` starts.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobs.session import jars_folder
from jobs.tools.generate_dump import REFERENCE_TIME
from jobs.tools.local_s3 import LocalS3, free_port

REPO = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sample_dump"
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
#: Launcher settings for a small job on a small machine.
SMALL_JOB_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.default.parallelism": "2",
    "spark.sql.shuffle.partitions": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.executor.memory": "768m",
    "spark.driver.memory": "768m",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.executor.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
}


def spark_home() -> Path:
    import pyspark

    return Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent)


def _wait_for(path: Path, pattern: str, count: int, timeout: float, proc: subprocess.Popen[bytes]
              ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        if len(re.findall(pattern, text)) >= count:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{path.stem} exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.2)
    raise TimeoutError(f"no '{pattern}' x{count} in {path} after {timeout} s")


class StandaloneCluster:
    """A Spark standalone master and ``workers`` workers on 127.0.0.1 (``spark-class``)."""

    def __init__(self, work: Path, workers: int = 2, cores: int = 1, memory: str = "1g",
                 env: dict[str, str] | None = None) -> None:
        self.work = Path(work)
        self.workers = workers
        self.cores = cores
        self.memory = memory
        self.port = free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "256m",
                    "SPARK_NO_DAEMONIZE": "1", **(env or {})}
        for key in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_CONF_DIR"):
            self.env.pop(key, None)
        self.processes: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name}.log", "wb")
        proc = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.processes.append(proc)
        return proc

    def start(self, timeout: float = 120) -> StandaloneCluster:
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            master = self._start("master", [
                "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                "--port", str(self.port), "--webui-port", str(free_port())], self.env)
            _wait_for(self.work / "master.log", r"I have been elected leader", 1, timeout,
                      master)
            for i in range(self.workers):
                folder = self.work / f"worker-{i}"
                (folder / "local").mkdir(parents=True, exist_ok=True)
                env = {**self.env, "SPARK_LOCAL_DIRS": str(folder / "local")}
                self._start(f"worker-{i}", [
                    "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                    "--cores", str(self.cores), "--memory", self.memory,
                    "--work-dir", str(folder / "work"), "--webui-port", str(free_port()),
                    self.url], env)
            _wait_for(self.work / "master.log", r"Registering worker", self.workers, timeout,
                      master)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the workers, then the master (their whole process groups)."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
        self.processes.clear()

    def __enter__(self) -> StandaloneCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def jars() -> list[str]:
    """Delta Lake's and the S3A connector's jars and the line guard's (``make setup`` puts them
    in ``.jars/``); ``--jars`` ships them to the executors."""
    folder = jars_folder()
    found = sorted(str(p) for p in folder.glob("*.jar"))
    if not any("hadoop-aws" in Path(j).name for j in found):
        raise SystemExit(f"the S3A connector's jars are not in {folder}: run `make setup`")
    return found


def submit_command(py_files: Path, master: str, conf: dict[str, str], job_args: list[str]
                   ) -> list[str]:
    submit = Path(sys.executable).parent / "spark-submit"
    return [str(submit), "--master", master, "--py-files", str(py_files),
            "--jars", ",".join(jars()),
            *[a for k, v in {**DELTA_CONF, **SMALL_JOB_CONF, **conf}.items()
              for a in ("--conf", f"{k}={v}")],
            str(REPO / "jobs" / "backfill.py"), *job_args]


def s3_job_conf(s3: LocalS3) -> dict[str, str]:
    """S3A for the JVMs, and the AWS variables for the executors' Python (staging)."""
    return {**s3.s3a_conf(),
            **{f"spark.executorEnv.{k}": v for k, v in s3.env().items()}}


def main() -> int:
    zips = sorted((REPO / "dist").glob("*.zip"))
    if not zips:
        print("no dist/*.zip: run `make wheel` first", file=sys.stderr)
        return 2
    from jobs.tools.local_graph_api import GraphApiEmulator

    token = f"cluster-demo-{secrets.token_hex(4)}"
    bucket = "backfill-demo"
    with tempfile.TemporaryDirectory(prefix="cluster-demo-") as tmp, LocalS3().start() as s3:
        env = {**os.environ, **s3.env(), "AWS_EC2_METADATA_DISABLED": "true",
               "FB_ACCESS_TOKEN": token, "PYSPARK_PYTHON": sys.executable}
        os.environ.update({k: v for k, v in s3.env().items()})
        s3.create_bucket(bucket)
        files = s3.upload(SAMPLE, f"s3a://{bucket}/mparticle/")
        print(f"moto S3 server on {s3.url}: {files} files of the sample dump in "
              f"s3a://{bucket}/mparticle/", flush=True)
        emulator = GraphApiEmulator(token=token, now=REFERENCE_TIME, seed=7, latency_ms=20)
        with emulator.start(), StandaloneCluster(Path(tmp) / "cluster").start() as cluster:
            print(f"Spark standalone master {cluster.url}, 2 workers (1 core, 1 GiB each); "
                  f"Graph API emulator on {emulator.url}\n", flush=True)
            args = ["--input", f"s3a://{bucket}/mparticle/",
                    "--output-dir", f"s3a://{bucket}/backfill", "--set-id", "4242",
                    "--base-url", emulator.url, "--reference-time", str(REFERENCE_TIME),
                    "--progress", "log"]
            codes = []
            for label in ("upload", "re-run (nothing is sent twice)"):
                cmd = submit_command(zips[-1], cluster.url, s3_job_conf(s3), args)
                print(f"$ spark-submit --master {cluster.url} ... jobs/backfill.py "
                      + " ".join(args) + f"   # {label}", flush=True)
                done = subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
                print(done.stdout.replace(token, "***"), flush=True)
                codes.append(done.returncode)
                print(f"exit code {done.returncode}; emulator: "
                      f"{emulator.stats()['events_accepted']} events accepted in all\n",
                      flush=True)
            fs = s3.filesystem()
            ledger = sorted(p for p in fs.find(f"{bucket}/backfill/results/_delta_log"))
            print(f"the ledger on S3: s3a://{bucket}/backfill/results ({len(ledger)} files in "
                  "its _delta_log)", flush=True)
        print("stopped the cluster, the emulator and the S3 server", flush=True)
    return 0 if codes and all(c in (0, 1) for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
