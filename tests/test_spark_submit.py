"""Cluster packaging (issue 5): the wheel, the job under the real ``spark-submit`` on a
``local-cluster`` master (separate executor JVMs and Python workers), and ``conf/cluster.yaml``.

The job runs the way a cluster runs it: the package travels as the wheel (``--py-files``, under
a ``.zip`` name, see ``py_files``), the entry file is ``jobs/backfill.py`` given by absolute
path, the working directory is outside the repository and PYTHONPATH is unset. Driver and
executors run a Python that sees the project's dependencies but not the project itself (the
repository's venv has it installed in editable mode, which would hide a packaging mistake), so
the job can only succeed by importing ``jobs`` and ``udfs`` from the wheel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from jobs.config import JobConfig, load_config
from jobs.ledger import is_path
from tests.helpers import NOW, REPO_ROOT

REPO = REPO_ROOT
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
SAMPLE = REPO / "jobs" / "samples" / "sample_dump"
TOKEN = "spark-submit-secret-7d41e"
SET_ID = "4242"
DELTA_CONF = (
    "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
    "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
)
#: Tuning for a tiny job on a small machine (launcher settings, as on a real cluster).
FAST_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.default.parallelism": "2",
    "spark.sql.shuffle.partitions": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.rdd.compress": "false",
    "spark.shuffle.compress": "false",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.executor.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.log.level": "INFO",  # the assertions read the scheduler's log lines
}
#: The job's settings for the test. The master here must be ignored under spark-submit.
JOB_YAML = """\
dialect: capi
progress: "off"
spark:
  master: local[1]
upload:
  max_in_flight: 2
  backoff_base_seconds: 0.01
  backoff_max_seconds: 0.05
"""

needs_spark_submit = pytest.mark.skipif(not SPARK_SUBMIT.is_file(),
                                        reason=f"no spark-submit next to {sys.executable}")


# ----- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``make wheel`` (``pip wheel --no-deps``) on a copy of the sources, so that the build
    leaves nothing in the repository (setuptools writes ``build/`` next to the sources)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for package in ("jobs", "udfs"):
        shutil.copytree(REPO / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
         str(src)], capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (path,) = (root / "dist").glob("*.whl")
    return path


@pytest.fixture(scope="module")
def py_files(wheel) -> Path:
    """The wheel under a ``.zip`` name, for ``--py-files``: PySpark puts ``.py``, ``.zip``,
    ``.egg`` and ``.jar`` files on the executors' path, but not ``.whl`` ones (it ships them and
    leaves them unused). A pure-Python wheel is a zip archive with the packages at its root."""
    path = wheel.with_suffix(".zip")
    shutil.copyfile(wheel, path)
    return path


@pytest.fixture(scope="module")
def cluster_python(tmp_path_factory) -> Path:
    """A Python for the driver and the executors: the venv's packages (pyspark, requests,
    pyyaml, delta-spark, ...) through a ``.pth`` line, but not the venv's editable install of
    this project (``.pth`` files inside a folder added that way are not processed)."""
    root = tmp_path_factory.mktemp("cluster-python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")],
                   check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "backfill_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return python


def _spark_work_dir() -> Path:
    """Where local-cluster workers keep executor folders: $SPARK_HOME/work."""
    import pyspark

    return Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent) / "work"


def submit(py_files: Path, python: Path, cwd: Path, job_args: list[str],
           env_extra: dict[str, str] | None = None, master: str = "local-cluster[2,1,1024]",
           delta: bool = True, jars: bool = True, timeout: float = 600
           ) -> subprocess.CompletedProcess[str]:
    """``spark-submit`` the job from ``cwd``; local-cluster: 2 workers, 1 core, 1 GiB each.

    The executors' own logs (under $SPARK_HOME/work) are appended to ``stderr``, then removed.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "FB_ACCESS_TOKEN", "PYSPARK_GATEWAY_PORT",
                        "PYSPARK_GATEWAY_SECRET", "PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR")}
    env["PYSPARK_PYTHON"] = str(python)  # driver, executors, and spark-submit's own look-up
    env.update(env_extra or {})
    delta_jars = sorted(str(p) for p in (REPO / ".jars").glob("*.jar"))
    cmd = [str(SPARK_SUBMIT), "--master", master, "--py-files", str(py_files),
           *(("--jars", ",".join(delta_jars)) if jars else ()),
           *(DELTA_CONF if delta else ()),
           *[a for k, v in FAST_CONF.items() for a in ("--conf", f"{k}={v}")],
           str(REPO / "jobs" / "backfill.py"), *job_args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the JVM, the Python driver, the executors
        stdout, stderr = proc.communicate()
        stderr += f"\n[test] spark-submit killed after {timeout} s"
    for app in set(re.findall(r"Registered app .* with ID (app-[0-9-]+)", stderr)):
        folder = _spark_work_dir() / app
        for log in sorted(folder.glob("*/std*")):
            stderr += f"\n[executor log {log.parent.name}/{log.name}]\n"
            stderr += log.read_text(encoding="utf-8", errors="replace")
        shutil.rmtree(folder, ignore_errors=True)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def report_figure(stdout: str, name: str) -> int:
    match = re.search(rf"^\s+{name}\s+(\d+)\s*$", stdout, re.MULTILINE)
    assert match, f"no '{name}' line in the report:\n{stdout[-3000:]}"
    return int(match.group(1))


def failure(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-6000:]}"


# ----- the wheel ------------------------------------------------------------------------------
@pytest.mark.slow
def test_wheel_holds_the_packages_and_the_sample_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("jobs", "udfs"):
        for module in (REPO / package).rglob("*.py"):
            assert module.relative_to(REPO).as_posix() in names
    samples = {p.relative_to(REPO).as_posix()
               for p in (REPO / "jobs" / "samples").rglob("*") if p.is_file()}
    assert samples and samples <= names, sorted(samples - names)
    assert "jobs/samples/sample_dump/_manifest.json" in names
    assert not any(n.startswith(("tests/", "conf/", "notebooks/")) for n in names)


@pytest.mark.slow
def test_wheel_does_not_force_spark_onto_a_cluster(wheel):
    """PySpark and Delta come with the cluster: only the ``spark`` extra asks for them."""
    archive = zipfile.ZipFile(wheel)
    (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    requires = [line.split(":", 1)[1].strip() for line in
                archive.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
    spark = [r for r in requires if r.startswith(("pyspark", "delta-spark"))]
    assert spark and all('extra == "spark"' in r for r in spark), requires
    entry_points = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "backfill = jobs.backfill:main" in archive.read(entry_points[0]).decode()


@pytest.mark.slow
def test_cluster_python_sees_the_dependencies_but_not_the_project(cluster_python, tmp_path):
    probe = ("import importlib.util as u; import pyspark, requests, yaml; "
             "print(u.find_spec('jobs') is None and u.find_spec('udfs') is None)")
    done = subprocess.run([str(cluster_python), "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, env={k: v for k, v in os.environ.items()
                                          if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


# ----- the job under spark-submit -------------------------------------------------------------
@pytest.mark.slow
@needs_spark_submit
@pytest.mark.parametrize(("token_source", "master"), [
    ("env", "local-cluster[2,1,1024]"),
    ("file", "local[2]"),  # the token file is read on the driver; a cheaper master suffices
], ids=["token-env-local-cluster", "token-file-local"])
def test_spark_submit_delivers_the_sample(py_files, cluster_python, tmp_path, token_source,
                                          master):
    from jobs.tools.local_graph_api import GraphApiEmulator

    manifest = json.loads((SAMPLE / "_manifest.json").read_text(encoding="utf-8"))
    config = tmp_path / "job.yaml"
    config.write_text(JOB_YAML, encoding="utf-8")
    out = tmp_path / "out"
    env_extra: dict[str, str] = {}
    token_args: list[str] = []
    if token_source == "env":
        env_extra["FB_ACCESS_TOKEN"] = TOKEN
    else:  # a mounted secret: a file only the job's user can read
        secret = tmp_path / "secrets" / "fb-token"
        secret.parent.mkdir()
        secret.write_text(TOKEN + "\n", encoding="utf-8")
        secret.chmod(0o600)
        token_args = ["--set", f"upload.token_file={secret}"]

    with GraphApiEmulator(token=TOKEN, now=NOW).start() as emulator:
        done = submit(py_files, cluster_python, tmp_path, [
            "--config", str(config), "--input", str(SAMPLE), "--output-dir", str(out),
            "--reference-time", str(NOW), "--set-id", SET_ID, "--base-url", emulator.url,
            *token_args,
        ], env_extra, master=master)
        accepted = emulator.accepted_events()

    assert done.returncode == 0, failure(done)
    # The launcher's master was used, not the config's local[1].
    assert f"using the launcher's Spark session (master: {master})" in done.stdout, failure(done)
    if master.startswith("local-cluster"):
        assert "Registered executor" in done.stderr, failure(done)  # separate executor JVMs
        assert "[executor log " in done.stderr  # their logs are checked for the token below
    # The driver imported the package from the wheel (Spark names the caller's file); the
    # executors could only have imported it from there.
    assert f"{py_files.name}/jobs/" in done.stderr, failure(done)

    delivered = report_figure(done.stdout, "delivered")
    rejected = report_figure(done.stdout, "rejected")
    assert report_figure(done.stdout, "failed") == 0
    assert report_figure(done.stdout, "not attempted") == 0
    # No custom attribute makes Meta refuse an event (SPEC §8): every payload is delivered.
    assert delivered == manifest["convertible"] and rejected == 0
    assert "Meta errors by code:" not in done.stdout
    assert len(accepted) == delivered
    keys = {(e["event_id"], e["event_name"]) for _, e in accepted}
    assert len(keys) == delivered  # each event once
    assert {set_id for set_id, _ in accepted} == {SET_ID}

    # The ledger is a Delta table and the staged outcomes were folded into it.
    for table in ("payloads", "quarantine", "results", "runs"):
        assert (out / table / "_delta_log").is_dir(), table
    assert not any((out / "_staging").glob("*/*.jsonl"))

    # The token is nowhere: not in the output, not in a log, not in a file the job wrote.
    assert TOKEN not in done.stdout
    assert TOKEN not in done.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.slow
@needs_spark_submit
@pytest.mark.parametrize(("delta", "jars", "message"), [
    (False, True, "error: the Spark session is not configured for Delta Lake"),
    (True, False, "error: Delta Lake's jars are not on the Spark classpath"),
], ids=["no-delta-settings", "no-delta-jars"])
def test_spark_submit_without_delta_fails_at_once_and_says_how(py_files, cluster_python,
                                                               tmp_path, delta, jars, message):
    config = tmp_path / "job.yaml"
    config.write_text(JOB_YAML, encoding="utf-8")
    done = submit(py_files, cluster_python, tmp_path, [
        "--config", str(config), "--input", str(SAMPLE), "--dry-run",
        "--output-dir", str(tmp_path / "out"),
    ], master="local[1]", delta=delta, jars=jars)
    assert done.returncode == 2, failure(done)
    output = done.stdout + done.stderr  # spark-submit merges the driver's stderr into stdout
    assert message in output
    assert "--conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in output
    assert "--packages io.delta:delta-spark_4.2_2.13:4.4.0" in output
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists()  # it failed before any work


# ----- conf/cluster.yaml ----------------------------------------------------------------------
def test_cluster_config_validates_and_leaves_the_master_to_the_launcher():
    config = load_config(REPO / "conf" / "cluster.yaml",
                         {"input": ["s3a://bucket/mparticle/2026-10-*"]})
    assert config.input == ("s3a://bucket/mparticle/2026-10-*",)
    assert config.spark.master is None
    assert "spark.speculation" not in config.spark.conf
    assert not config.dry_run
    for name in ("payloads", "quarantine", "results", "runs"):
        assert not is_path(config.table(name)), name  # metastore names
    assert config.upload.token_file  # a mounted secret
    assert config.upload.partitions and config.upload.max_in_flight
    # Staging on object storage: every node reaches it, no shared disk needed.
    assert config.staging_dir.startswith("s3a://")
    assert config.upload.set_id


# ----- conf/scheduling ------------------------------------------------------------------------
def _job_config(args: list[str]) -> JobConfig:
    from jobs.backfill import build_parser, config_from_args

    return config_from_args(build_parser().parse_args(args))


def test_airflow_dag_arguments_are_valid_job_arguments():
    """The DAG is not imported (no Airflow here): its argument constants are read from the file
    and the job's own parser and validation run on them, with {{ ds }} rendered."""
    import ast

    path = REPO / "conf" / "scheduling" / "airflow_backfill_dag.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wanted = {"RELEASE", "APPLICATION_ARGS", "SPARK_CONF"}
    assigns = [node for node in tree.body if isinstance(node, ast.Assign)
               and {t.id for t in node.targets if isinstance(t, ast.Name)} & wanted]
    namespace: dict = {}
    exec(compile(ast.Module(body=assigns, type_ignores=[]), str(path), "exec"), namespace)
    args = namespace["APPLICATION_ARGS"]
    assert args[args.index("--from-date") + 1] == "{{ ds }}"
    assert args[args.index("--to-date") + 1] == "{{ ds }}"
    rendered = [a.replace("{{ ds }}", "2026-10-01") for a in args]
    rendered[rendered.index("--config") + 1] = str(REPO / "conf" / "cluster.yaml")
    config = _job_config(rendered)
    assert (config.from_date, config.to_date) == ("2026-10-01", "2026-10-01")
    assert config.spark.master is None
    conf = namespace["SPARK_CONF"]
    assert conf["spark.speculation"] == "false"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_databricks_job_parameters_are_valid_job_arguments():
    import yaml

    path = REPO / "conf" / "scheduling" / "databricks_backfill_job.yml"
    job = yaml.safe_load(path.read_text(encoding="utf-8"))["resources"]["jobs"][
        "mparticle_meta_backfill"]
    assert job["max_concurrent_runs"] == 1
    (task,) = job["tasks"]
    assert (path.parent / task["spark_python_task"]["python_file"]).resolve() == \
        REPO / "jobs" / "backfill.py"
    rendered = [
        a.replace("{{job.parameters.from_date}}", "2026-10-01")
        .replace("{{job.parameters.to_date}}", "2026-10-31")
        .replace("${workspace.file_path}", str(REPO))
        for a in task["spark_python_task"]["parameters"]
    ]
    config = _job_config(rendered)
    assert (config.from_date, config.to_date) == ("2026-10-01", "2026-10-31")
    assert not config.upload.token_file  # the token comes from the secret-scope variable
    assert config.upload.token_env in job["job_clusters"][0]["new_cluster"]["spark_env_vars"]
    assert config.staging_dir.startswith("/Volumes/")
    assert job["job_clusters"][0]["new_cluster"]["spark_conf"]["spark.speculation"] == "false"
