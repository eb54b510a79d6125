"""Benchmark of the backfill job: how close it runs to Spark's own floor, how it scales,
how well it uploads, and how much memory it takes.

``python -m jobs.tools.benchmark`` generates dumps with the project's generator (kept under
``out/benchmark/dumps`` and reused while their settings match), runs every measurement in this
one invocation, prints a table and writes it as JSON (``--json``, default
``out/benchmark/results.json``). ``--quick`` is a tiny smoke run (one repetition).

Every measurement runs in a process of its own (``python -m jobs.tools.benchmark _worker ...``), so
its memory is its own: a worker builds its session with the job's session factory and the job's
default settings (``conf/local.yaml``, master ``local[2]``), runs the job ``--reps`` times back to
back into fresh tables, times each run from start to "done", reads Spark's stage metrics from the
status store (task time, bytes in and out, per stage) and samples the peak RSS (``VmHWM`` in
``/proc``) of its process tree: the Python driver, the JVM (driver and executors in local mode)
and the Python workers. The first run of a process pays the JVM's warm-up (class loading, code
generation, JIT: about ten seconds); it is reported as the "cold" figure, and the median is a
warm run, as the bulk of a long backfill is.

Figures (ratios of runs measured in one invocation; each a median of ``--reps`` repetitions):

- P1: full dry run (``run_backfill``: list, read, transform, ``payloads``/``quarantine`` in
  Delta, counts, ``runs``) / floor (Spark reading the same dump with the same explicit schema,
  exploding the events and writing them to Parquet), both at the largest size.
- P2: events per second of that dry run, and its time split by Spark stage.
- P3: upload to the local Graph API emulator (50 ms per request): delivered events per second /
  min(requests in flight x events per request / latency, the emulator's capacity measured with
  a minimal client at 0 ms); compared with an SDK-like client (one request in flight, 50 events
  per request, a new connection per request, form-encoded). A first upload sends every payload
  (the emulator rejects a few: reported as context); the measured ones send the accepted ones.
- P4: peak RSS at 4x the base input / at 1x.
- P6: the user's view, whole processes with cold JVMs: ``python -m jobs.backfill --dry-run``
  (``local[2]``) against :mod:`jobs.tools.python_baseline`, a plain single-process Python
  implementation of the same SPEC rules (one core), on gzipped dumps of ``--compare-events``
  events and of four times that. Both write the payloads; their payload and skip counts are
  compared (they must agree).
- P5: dry-run time at 4x / at 1x (1x and 2x are the base and twice the base; the 2x run, a
  middle point that no ratio uses, runs once unless ``--reps-2x`` says otherwise, which keeps
  the default run under ten minutes on two cores).

Only 127.0.0.1 is contacted (the emulators this script starts).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jobs.tools.generate_dump import REFERENCE_TIME

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "conf" / "local.yaml"
DEFAULT_WORK_DIR = REPO_ROOT / "out" / "benchmark"
DEFAULT_EVENTS = 1_000_000
QUICK_EVENTS = 4_000
MASTER = "local[2]"
SEED = 7
SCALES = (1, 2, 4)
EVENTS_PER_FILE = 125_000
LATENCY_MS = 50.0
TOKEN = "benchmark-token"
SET_ID = "1234567890"
API_VERSION = "v26.0"
#: The reference client: Meta's Python business SDK batch uploader with its defaults.
SDK_EVENTS_PER_REQUEST = 50
TARGETS = {"p1_ratio": 2.5, "p1_moonshot": 1.5, "p6_ratio": 1.0, "p6_moonshot_4x": 0.5,
           "p3_efficiency": 0.8, "p3_vs_sdk": 10.0, "p4_ratio": 1.2,
           "p5_ratio": 4.4}
WORKER_TIMEOUT_S = 1800
#: P6's base size (the issue's dump: about 1.4M events, 16 gzipped files); 4x is also run.
COMPARE_EVENTS = 1_400_000
COMPARE_EVENTS_PER_FILE = 87_500


# ----- memory of a process tree -------------------------------------------------------------
def _status_kb(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, rest = line.split(":", 1)
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return values


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _descendants(root: int) -> list[int]:
    children = _children_map()
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "python_driver"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "other"
    program = os.path.basename(argv[0]) if argv else ""
    if program == "java" and "org.apache.spark.launcher.Main" not in argv:
        return "jvm"
    if program.startswith("python") and ("pyspark.daemon" in argv or "pyspark.worker" in argv):
        return "python_workers"
    return "other"


class TreeMemory:
    """Samples the resident memory of a process and its descendants on a background thread.

    For each process the peak is its ``VmHWM`` (the kernel's high-water mark of its RSS); for
    the Python workers, which come and go and share pages with their daemon, the peak is the
    largest sum of their ``VmRSS`` seen at one sample.
    """

    def __init__(self, root: int | None = None, interval: float = 0.2) -> None:
        self.root = root or os.getpid()
        self.interval = interval
        self._hwm: dict[tuple[int, str], int] = {}
        self._sum_peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-memory", daemon=True)

    def start(self) -> TreeMemory:
        self.sample()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        sums: dict[str, int] = {}
        for pid in _descendants(self.root):
            kb = _status_kb(pid)
            if not kb:
                continue
            # The role is read each time: a launcher script exec's the JVM in the same process.
            role = _role(pid, self.root)
            self._hwm[(pid, role)] = max(kb.get("VmHWM", 0), self._hwm.get((pid, role), 0))
            sums[role] = sums.get(role, 0) + kb.get("VmRSS", 0)
        for role, total in sums.items():
            self._sum_peak[role] = max(self._sum_peak.get(role, 0), total)

    def stop(self) -> dict[str, float]:
        """Stop sampling; peaks in MiB per role and ``total`` (their sum)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()
        peaks: dict[str, float] = {}
        for role in ("python_driver", "jvm", "python_workers"):
            if role == "python_workers":
                kb = self._sum_peak.get(role, 0)
            else:
                kb = max((h for (_, r), h in self._hwm.items() if r == role), default=0)
            peaks[role] = round(kb / 1024, 1)
        peaks["total"] = round(sum(peaks.values()), 1)
        return peaks


# ----- Spark's own metrics ------------------------------------------------------------------
def _epoch_ms(option: Any) -> int | None:
    return int(option.get().getTime()) if option.isDefined() else None


def stage_metrics(spark: Any) -> list[dict[str, Any]]:
    """Every stage of the application from Spark's status store (what the UI shows), read
    through the JVM: no UI server or HTTP needed."""
    sc = spark.sparkContext
    with contextlib.suppress(Exception):  # private[spark] in Scala, public in the bytecode
        sc._jsc.sc().listenerBus().waitUntilEmpty(10_000)
    store = sc._jsc.sc().statusStore()
    gateway = sc._gateway
    stages = store.stageList(None, False, False, gateway.new_array(gateway.jvm.double, 0), None)
    found = []
    it = stages.iterator()
    while it.hasNext():
        s = it.next()
        found.append({
            "stage": s.stageId(), "attempt": s.attemptId(), "status": s.status().toString(),
            "name": s.name(), "tasks": s.numTasks(),
            "task_s": s.executorRunTime() / 1000, "cpu_s": s.executorCpuTime() / 1e9,
            "gc_s": s.jvmGcTime() / 1000,
            "input_bytes": s.inputBytes(), "input_records": s.inputRecords(),
            "output_bytes": s.outputBytes(), "output_records": s.outputRecords(),
            "shuffle_read_bytes": s.shuffleReadBytes(),
            "shuffle_write_bytes": s.shuffleWriteBytes(),
            "submitted_ms": _epoch_ms(s.submissionTime()),
            "completed_ms": _epoch_ms(s.completionTime()),
        })
    return sorted(found, key=lambda s: (s["stage"], s["attempt"]))


def _covered_seconds(intervals: list[tuple[int, int]]) -> float:
    total, end = 0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total / 1000


def split_by_stage(stages: list[dict[str, Any]], input_bytes: int, started_ms: int,
                   finished_ms: int) -> dict[str, dict[str, float]]:
    """Group the stages run between ``started_ms`` and ``finished_ms`` by what they do.

    - ``read+transform``: the stage that scans the dump (reading, parsing, match keys, payload
      JSON: Spark pipelines them into one stage) up to the shuffle of the de-duplication;
    - ``write``: the stages that read that shuffle and write the payload files;
    - ``quarantine``: a stage that reads the dump again to write the quarantine table;
    - ``delta+bookkeeping``: everything else (Delta log and checkpoints, counts, samples, the
      ``runs`` table);
    - ``driver only``: time with no stage running (planning, listing, commits).

    Times are wall seconds (the union of the stages' spans) and task seconds (summed over
    tasks, so up to twice the wall time on two cores).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in stages:
        if s["status"] != "COMPLETE" or s["submitted_ms"] is None or s["completed_ms"] is None:
            continue
        if s["submitted_ms"] < started_ms - 1000 or s["completed_ms"] > finished_ms + 1000:
            continue
        scans_input = input_bytes and s["input_bytes"] >= 0.5 * input_bytes
        if scans_input and s["shuffle_write_bytes"] > 0:
            name = "read+transform"
        elif scans_input:
            name = "quarantine"
        elif s["shuffle_read_bytes"] > 0 and s["output_bytes"] > 0:
            name = "write"
        else:
            name = "delta+bookkeeping"
        groups.setdefault(name, []).append(s)
    split: dict[str, dict[str, float]] = {}
    for name in ("read+transform", "write", "quarantine", "delta+bookkeeping"):
        group = groups.get(name, [])
        split[name] = {
            "wall_s": round(_covered_seconds(
                [(s["submitted_ms"], s["completed_ms"]) for s in group]), 2),
            "task_s": round(sum(s["task_s"] for s in group), 2),
            "cpu_s": round(sum(s["cpu_s"] for s in group), 2),
            "gc_s": round(sum(s["gc_s"] for s in group), 2),
            "stages": len(group),
        }
    all_spans = [(s["submitted_ms"], s["completed_ms"]) for g in groups.values() for s in g]
    split["driver only"] = {
        "wall_s": round(max(0.0, (finished_ms - started_ms) / 1000 - _covered_seconds(all_spans)),
                        2),
        "task_s": 0.0, "cpu_s": 0.0, "gc_s": 0.0, "stages": 0,
    }
    return split


# ----- workers (one measured job per process) -------------------------------------------------
def _job_config(task: dict[str, Any], **overrides: Any) -> Any:
    from jobs.config import load_config

    base = {
        "input": [task["dump"]], "output_dir": task["output_dir"],
        "reference_time": REFERENCE_TIME, "progress": "off", "spark.master": task["master"],
    }
    return load_config(DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None,
                       {**base, **overrides})


def _session(config: Any, app_name: str) -> Any:
    from jobs.session import get_spark

    return get_spark(config.spark.master, app_name, config.spark.conf)


def _rep_dirs(task: dict[str, Any]) -> list[Path]:
    """One output folder per run; with ``warm_up`` a first run that is not a repetition."""
    runs = task["reps"] + (1 if task.get("warm_up") else 0)
    return [Path(task["output_dir"]) / f"rep-{rep}" for rep in range(runs)]


def _timed_runs(task: dict[str, Any], memory: TreeMemory, spark: Any,
                run_once: Callable[[Path], dict[str, Any] | None]) -> dict[str, Any]:
    """Run ``run_once(output_dir)`` for each of :func:`_rep_dirs`, timed; return the runs
    (``reps``, less a ``warm_up`` run when the task asks for one), every stage of the session
    and the process tree's peak memory. ``run_once`` may return extra fields for its run."""
    reps = []
    for out in _rep_dirs(task):
        started = time.time()
        extra = run_once(out) or {}
        done = time.time()
        reps.append({"run_s": round(done - started, 3), "started_ms": int(started * 1000),
                     "finished_ms": int(done * 1000), "output_dir": str(out), **extra})
    result: dict[str, Any] = {"reps": reps, "stages": stage_metrics(spark),
                              "memory_mib": memory.stop()}
    if task.get("warm_up"):
        result["warm_up"] = reps.pop(0)
    return result


def _worker_dry(task: dict[str, Any], memory: TreeMemory) -> dict[str, Any]:
    """The job's dry run, ``reps`` times in this process (the first pays the JVM's warm-up:
    class loading, code generation and JIT), each into fresh tables."""
    from jobs.pipeline import run_backfill

    spark = _session(_job_config(task, dry_run=True), "benchmark-dry-run")

    def run_once(out: Path) -> dict[str, Any]:
        report = run_backfill(spark, _job_config(task, dry_run=True, output_dir=str(out)), None)
        return {"status": report.status, "counts": report.counts}

    result = _timed_runs(task, memory, spark, run_once)
    for rep in [result.get("warm_up"), *result["reps"]]:
        if rep:
            rep["split"] = split_by_stage(result["stages"], task["input_bytes"],
                                          rep["started_ms"], rep["finished_ms"])
    if task.get("read_probe"):
        result["read_probe"] = _read_probe(spark, _job_config(task, dry_run=True),
                                           {s["stage"] for s in result["stages"]})
    if task.get("sample_path"):
        from jobs import ledger

        last = _job_config(task, dry_run=True, output_dir=result["reps"][-1]["output_dir"])
        rows = (ledger.read_table(spark, last.table("payloads")).orderBy("event_key")
                .select("payload").limit(task.get("sample_size", 3000)).collect())
        Path(task["sample_path"]).write_text(json.dumps([r["payload"] for r in rows]),
                                             encoding="utf-8")
    spark.stop()
    return result


def _read_probe(spark: Any, config: Any, seen: set[int]) -> dict[str, float]:
    """Spark's metrics of reading and parsing the dump alone (the job's own read functions,
    a no-op sink): the ``read`` part of the scan stage. Run after the timed dry runs."""
    from jobs.conversion.listing import list_input_files
    from jobs.conversion.read import parse_batches, read_lines

    files = list_input_files(spark, config.input).paths
    started = time.time()
    parse_batches(read_lines(spark, files)).write.format("noop").mode("overwrite").save()
    wall = time.time() - started
    new = [s for s in stage_metrics(spark) if s["stage"] not in seen and s["status"] == "COMPLETE"]
    return {"wall_s": round(wall, 2), "task_s": round(sum(s["task_s"] for s in new), 2),
            "cpu_s": round(sum(s["cpu_s"] for s in new), 2)}


def _worker_floor(task: dict[str, Any], memory: TreeMemory) -> dict[str, Any]:
    """Spark's floor, ``reps`` times in this process, as the dry runs are."""
    from pyspark.sql import functions as F

    from jobs.conversion.listing import list_input_files
    from jobs.conversion.read import BATCH_SCHEMA

    config = _job_config(task, dry_run=True)
    spark = _session(config, "benchmark-floor")

    def run_once(out: Path) -> None:
        files = list_input_files(spark, config.input).paths
        events = (spark.read.text(files)
                  .select(F.explode(F.from_json("value", BATCH_SCHEMA)["events"]).alias("event"))
                  .select("event.*"))
        events.write.mode("overwrite").parquet(str(out / "floor"))

    result = _timed_runs(task, memory, spark, run_once)
    spark.stop()
    return result


def _emulator_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_emulator/stats", timeout=30) as reply:
        stats: dict[str, Any] = json.loads(reply.read())
        return stats


def _upload_once(spark: Any, task: dict[str, Any], name: str, payloads: int) -> dict[str, Any]:
    """One upload of the ``payloads`` table to the emulator, into ledger tables of its own."""
    from pyspark.sql import functions as F

    from jobs import ledger
    from jobs.pipeline import new_run_id, run_status
    from jobs.upload.driver import upload_partitions, upload_payloads

    work = Path(task["work_dir"])
    cfg = _job_config(task, dry_run=False, **{
        "upload.base_url": task["url"], "upload.set_id": SET_ID,
        "upload.api_version": API_VERSION,
        "tables.results": str(work / f"results-{name}"),
        "tables.runs": str(work / f"runs-{name}"),
        "upload.staging_dir": str(work / f"staging-{name}"),
    })
    before = _emulator_stats(task["url"])
    started = time.time()
    summary = upload_payloads(spark, cfg, TOKEN, new_run_id(), payloads)
    stage_s = time.time() - started
    after = _emulator_stats(task["url"])
    window = (ledger.read_table(spark, cfg.table("results"))
              .agg(F.min("started_at").alias("first"), F.max("finished_at").alias("last"))
              .first())
    assert window is not None
    send_s = (window["last"] - window["first"]).total_seconds()
    tasks = upload_partitions(spark, cfg, payloads)
    return {
        "stage_s": round(stage_s, 3), "send_s": round(send_s, 3),
        "delivered": summary.delivered, "rejected": summary.rejected,
        "failed": summary.failed, "requests": summary.requests,
        "accepted_by_emulator": after["events_accepted"] - before["events_accepted"],
        "emulator_requests": after["requests"]["total"] - before["requests"]["total"],
        "connections": after["connections"] - before["connections"],
        "status": run_status({"reconciles": 1}, summary, cfg)[0], "tasks": tasks,
        "concurrent_tasks": max(1, min(tasks, spark.sparkContext.defaultParallelism)),
        "max_in_flight": cfg.upload.max_in_flight, "chunk_size": cfg.chunk_size,
        "body_format": cfg.upload.body_format, "results_table": cfg.table("results"),
    }


def _worker_upload(task: dict[str, Any], memory: TreeMemory) -> dict[str, Any]:
    """P3. A first upload sends every payload of the 1x dry run: the emulator rejects a few
    (Meta rejects a whole request for one bad event, so each costs a request more: that upload
    is reported as it is). The rejected events are then removed from ``payloads`` and the
    measured repetitions upload the rest, so that every request can carry a full chunk, as the
    bound assumes."""
    from pyspark.sql import functions as F

    from jobs import ledger

    config = _job_config(task, dry_run=False)
    spark = _session(config, "benchmark-upload")
    payloads_at = config.table("payloads")
    all_payloads = ledger.read_table(spark, payloads_at).count()
    first = _upload_once(spark, task, "with-rejections", all_payloads)
    rejected = (ledger.read_table(spark, first["results_table"])
                .where(F.col("status") == "rejected")
                .select(F.explode("event_keys").alias("event_key")).distinct())
    kept = ledger.read_table(spark, payloads_at).join(rejected, "event_key", "left_anti")
    kept.localCheckpoint().write.format("delta").mode("overwrite").save(payloads_at)
    payloads = ledger.read_table(spark, payloads_at).count()
    reps = [_upload_once(spark, task, f"rep-{rep}", payloads) for rep in range(task["reps"])]
    result = {"payloads": payloads, "all_payloads": all_payloads, "with_rejections": first,
              "reps": reps}
    result["memory_mib"] = memory.stop()
    spark.stop()
    return result


WORKERS = {"dry": _worker_dry, "floor": _worker_floor, "upload": _worker_upload}


def worker_main(task_path: str, result_path: str) -> int:
    """Run one measured job (``python -m jobs.tools.benchmark _worker TASK RESULT``)."""
    memory = TreeMemory().start()
    task = json.loads(Path(task_path).read_text(encoding="utf-8"))
    os.environ.setdefault("BACKFILL_SPARK_LOG_LEVEL", "ERROR")
    result = WORKERS[task["kind"]](task, memory)
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


# ----- the orchestrator -----------------------------------------------------------------------
def _log(message: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_worker(task: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run one worker process; return its result plus ``process_s`` (its whole wall time)."""
    name = task["name"]
    task_path, result_path = work / f"{name}.task.json", work / f"{name}.result.json"
    log_path = work / f"{name}.log"
    task_path.write_text(json.dumps(task), encoding="utf-8")
    result_path.unlink(missing_ok=True)
    started = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "jobs.tools.benchmark", "_worker", str(task_path),
             str(result_path)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=WORKER_TIMEOUT_S,
            check=False)
    process_s = time.time() - started
    if proc.returncode != 0 or not result_path.is_file():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"benchmark worker {name} failed (exit {proc.returncode}); "
                           f"log {log_path}:\n{tail}")
    result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    result["process_s"] = round(process_s, 3)
    return result


def ensure_dump(root: Path, events: int, files: int, gzip: bool = False) -> dict[str, Any]:
    """A generated dump of ``events`` events, reused when one with the same settings exists."""
    from jobs.tools.generate_dump import MANIFEST_NAME, Manifest, generate_dump

    folder = root / (f"e{events}-f{files}-s{SEED}" + ("-gz" if gzip else ""))
    wanted = {"events": events, "files": files, "seed": SEED, "reference_time": REFERENCE_TIME}
    manifest = None
    if (folder / MANIFEST_NAME).is_file():
        manifest = Manifest.load(folder)
        if any(manifest.settings.get(k) != v for k, v in wanted.items()):
            manifest = None
    generated_s = 0.0
    if manifest is None:
        _log(f"generating a dump of {events:,} events in {files} files: {folder}")
        started = time.time()
        manifest = generate_dump(folder, events, seed=SEED, reference_time=REFERENCE_TIME,
                                 files=files, gzip=gzip, overwrite=True)
        generated_s = round(time.time() - started, 1)
    data_bytes = sum((folder / f["path"]).stat().st_size for f in manifest.files)
    return {"path": str(folder), "events": manifest.events, "generated_events": events,
            "files": files, "bytes": data_bytes, "lines": manifest.input_lines,
            "convertible": manifest.convertible, "generated_s": generated_s}


def _job_profile() -> str:
    """The mapping profile the job applies by default (``extended`` = SPEC §9 when the job has
    the setting, else ``mparticle``: SPEC §4 keys and §3 contents only)."""
    from jobs.config import load_config

    mapping = load_config(None, {"input": ["x"], "dry_run": True}).mapping
    return str(getattr(mapping, "profile", "mparticle"))


def _timed_process(cmd: list[str], log_path: Path) -> tuple[float, str]:
    started = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log,
                              text=True, timeout=WORKER_TIMEOUT_S, check=False)
    seconds = time.time() - started
    if proc.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{cmd[2]} failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    return round(seconds, 3), proc.stdout


def parse_report_counts(text: str) -> dict[str, int]:
    """The payload and skip counts from the job's printed run report."""
    counts: dict[str, int] = {}
    found = re.search(r"candidate events\s+(\d+)\s+= payloads (\d+) \+ skipped (\d+)", text)
    if found:
        counts.update(candidate_events=int(found[1]), payloads=int(found[2]),
                      skipped=int(found[3]))
    section = text.split("candidate events", 1)[-1]
    for name, value in re.findall(r"^ {6}([a-z_]+)\s+(\d+)$", section, re.MULTILINE):
        counts[f"skipped.{name}"] = int(value)
    return counts


def whole_dry_run(dump: dict[str, Any], out: Path, log_path: Path,
                  extra: Sequence[str] = ()) -> dict[str, Any]:
    """The job's dry run as a user starts it: one ``python -m jobs.backfill`` process, cold."""
    cmd = [sys.executable, "-m", "jobs.backfill", "--dry-run", "--input", dump["path"],
           "--output-dir", str(out), "--reference-time", str(REFERENCE_TIME),
           "--master", MASTER, "--progress", "off", *extra]
    seconds, stdout = _timed_process(cmd, log_path)
    shutil.rmtree(out, ignore_errors=True)
    return {"process_s": seconds, "counts": parse_report_counts(stdout)}


def python_script_run(dump: dict[str, Any], out: Path, log_path: Path,
                      profile: str) -> dict[str, Any]:
    """:mod:`jobs.tools.python_baseline` on the same dump: one process, one core."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "jobs.tools.python_baseline", "--input", dump["path"],
           "--out", str(out / "payloads.jsonl"), "--reference-time", str(REFERENCE_TIME),
           "--profile", profile]
    seconds, stdout = _timed_process(cmd, log_path)
    shutil.rmtree(out, ignore_errors=True)
    counts = json.loads(stdout.strip().splitlines()[-1])
    return {"process_s": seconds, "profile": profile,
            "counts": {k: v for k, v in counts.items()
                       if k in ("payloads", "skipped", "candidate_events")
                       or k.startswith("skipped.")}}


def compare_with_python(dumps: dict[int, dict[str, Any]], runs_root: Path) -> dict[str, Any]:
    """P6: whole processes side by side on each dump (job dry run, then the Python script)."""
    profile = _job_profile()
    found: dict[str, Any] = {}
    for scale, dump in dumps.items():
        name = f"compare-{scale}x"
        _log(f"{name}: {dump['events']:,} events, job dry run (whole process, cold)")
        job = whole_dry_run(dump, runs_root / name / "job", runs_root / f"{name}-job.log")
        _log(f"{name}: job {job['process_s']:.1f} s; the Python script (profile {profile})")
        script = python_script_run(dump, runs_root / name / "python",
                                   runs_root / f"{name}-python.log", profile)
        _log(f"{name}: Python script {script['process_s']:.1f} s")
        found[f"{scale}x"] = {"events": dump["events"], "bytes": dump["bytes"],
                              "files": dump["files"], "job": job, "python": script}
    return found


def class_archive_pairs(dumps_root: Path, runs_root: Path, pairs: int
                        ) -> dict[str, Any] | None:
    """Cold start: whole dry runs of a small dump with the embedded driver's class-data archive
    (``make setup`` writes it) and without it (the JDK's own archive only), alternating, ``pairs``
    of each. None when there is no archive or no pairs are asked for."""
    from jobs.session import EMBEDDED_JAVA_OPTIONS, class_archive

    if pairs < 1 or not class_archive().is_file():
        return None
    dump = ensure_dump(dumps_root, QUICK_EVENTS, 2, gzip=True)
    without = ["--set", f"spark.conf.spark.driver.extraJavaOptions={EMBEDDED_JAVA_OPTIONS}"
                        " -Xshare:auto"]  # options that choose the sharing: no archive added
    seconds: dict[str, list[float]] = {"with": [], "without": []}
    counts: dict[str, list[dict[str, int]]] = {"with": [], "without": []}
    for i in range(pairs):
        for kind in (("without", "with") if i % 2 else ("with", "without")):
            name = f"start-{kind}-archive-{i}"
            run = whole_dry_run(dump, runs_root / name, runs_root / f"{name}.log",
                                without if kind == "without" else ())
            seconds[kind].append(run["process_s"])
            counts[kind].append(run["counts"])
    _log(f"cold start, {dump['events']:,} events: with the class archive {seconds['with']} s,"
         f" without {seconds['without']} s")
    first = counts["with"][0]
    return {"events": dump["events"], "pairs": pairs, "with_s": seconds["with"],
            "without_s": seconds["without"],
            "counts_agree": all(c == first for c in counts["with"] + counts["without"])}


class Emulator:
    """The local Graph API emulator in a process of its own (its CPU is not the job's)."""

    def __init__(self, latency_ms: float, log_path: Path) -> None:
        self._log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.tools.local_graph_api", "--port", "0",
             "--host", "127.0.0.1",
             "--now", str(REFERENCE_TIME), "--latency-ms", str(latency_ms), "--token", TOKEN,
             "--no-keep-events"],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening on " not in line:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].strip()

    def stats(self) -> dict[str, Any]:
        return _emulator_stats(self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sendable_sample(sample_path: Path) -> list[str]:
    """The exported payloads that the emulator accepts (a minimal client does not isolate bad
    events, so it must send good ones only)."""
    from jobs.tools.local_graph_api import validate_capi_event, validate_legacy_event

    good = []
    for text in json.loads(sample_path.read_text(encoding="utf-8")):
        event = json.loads(text)
        check = validate_legacy_event if "match_keys" in event else validate_capi_event
        try:
            check(event, REFERENCE_TIME)
        except Exception:  # the emulator's _Invalid
            continue
        good.append(text)
    return good


def emulator_capacity(emulator: Emulator, payloads: list[str], chunk: int, seconds: float,
                      connections: int = 4) -> dict[str, float]:
    """Events per second the emulator accepts from a minimal client: ``connections`` keep-alive
    connections, each posting a pre-encoded JSON body of ``chunk`` events back to back."""
    events = (payloads * (chunk // max(len(payloads), 1) + 1))[:chunk]
    body = json.dumps({"access_token": TOKEN, "data": [json.loads(p) for p in events]},
                      separators=(",", ":")).encode()
    parts = urlsplit(emulator.url)
    path = f"/{API_VERSION}/{SET_ID}/events"
    errors: list[str] = []

    def post_loop(deadline: float) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        try:
            while time.perf_counter() < deadline:
                conn.request("POST", path, body=body,
                             headers={"Content-Type": "application/json"})
                reply = conn.getresponse()
                reply.read()
                if reply.status != 200:
                    errors.append(str(reply.status))
                    return
        finally:
            conn.close()

    before = emulator.stats()
    started = time.perf_counter()
    threads = [threading.Thread(target=post_loop, args=(started + seconds,))
               for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    accepted = emulator.stats()["events_accepted"] - before["events_accepted"]
    if errors:
        raise RuntimeError(f"the emulator refused the minimal client's requests: {errors[:3]}")
    return {"events_per_s": round(accepted / elapsed, 1), "seconds": round(elapsed, 2),
            "events": accepted, "connections": connections, "chunk": chunk}


def sdk_like_baseline(emulator: Emulator, payloads: list[str], requests_count: int
                      ) -> dict[str, float]:
    """What Meta's Python business SDK batch uploader does with its defaults: one request in
    flight, ``SDK_EVENTS_PER_REQUEST`` events per request, a new connection per request, a
    form-encoded body."""
    import requests

    url = f"{emulator.url}/{API_VERSION}/{SET_ID}/events"
    delivered = 0
    started = time.perf_counter()
    for i in range(requests_count):
        offset = (i * SDK_EVENTS_PER_REQUEST) % max(len(payloads) - SDK_EVENTS_PER_REQUEST, 1)
        chunk = payloads[offset:offset + SDK_EVENTS_PER_REQUEST]
        body = urlencode({"access_token": TOKEN, "data": "[" + ",".join(chunk) + "]"})
        reply = requests.post(url, data=body, timeout=60, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Connection": "close"})
        if reply.status_code == 200:
            delivered += len(chunk)
    elapsed = time.perf_counter() - started
    return {"events_per_s": round(delivered / elapsed, 1), "seconds": round(elapsed, 2),
            "events": delivered, "requests": requests_count}


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _median_run(runs: list[dict[str, Any]], key: str = "run_s") -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(Exception):
        import pyspark

        info["spark"] = pyspark.__version__
    with contextlib.suppress(Exception):
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        info["java"] = (out.stderr or out.stdout).splitlines()[0]
    return info


def _plan(reps: int, reps_2x: int) -> list[tuple[str, int, int]]:
    """(kind, scale, repetitions): one process per measurement, its repetitions back to back
    (the first pays the JVM's warm-up, the median is a warm run, as in a long backfill where
    that cost is amortized). The 2x dry run is P5's middle point, which no ratio uses: by
    default it runs once, after a warm-up run (see ``run_benchmark``)."""
    return [("dry", 1, reps), ("floor", 4, reps), ("dry", 2, reps_2x), ("dry", 4, reps)]


def run_benchmark(events: int, reps: int, work: Path, quick: bool = False,
                  latency_ms: float = LATENCY_MS, reps_2x: int = 1,
                  compare_events: int = COMPARE_EVENTS, archive_pairs: int = 0
                  ) -> dict[str, Any]:
    """Run every measurement and return the results (also the JSON written by ``main``)."""
    started = time.time()
    load_before = os.getloadavg()
    base = max(events // SCALES[-1], 1)
    dumps_root = work / "dumps"
    runs_root = work / "runs"
    shutil.rmtree(runs_root, ignore_errors=True)
    runs_root.mkdir(parents=True)
    dumps = {}
    for scale in SCALES:
        n = base * scale
        dumps[scale] = ensure_dump(dumps_root, n, max(2, round(n / EVENTS_PER_FILE)))

    results: dict[str, dict[str, Any]] = {}
    sample_path = runs_root / "payload-sample.json"
    for kind, scale, n_reps in _plan(reps, max(1, min(reps_2x, reps))):
        name = f"{kind}-{scale}x"
        task = {"name": name, "kind": kind, "dump": dumps[scale]["path"], "reps": n_reps,
                "warm_up": n_reps < reps,  # a median of fewer runs: make them warm ones
                "input_bytes": dumps[scale]["bytes"], "output_dir": str(runs_root / name),
                "master": MASTER, "read_probe": kind == "dry" and scale == 4,
                "sample_path": str(sample_path) if (kind, scale) == ("dry", 1) else None}
        _log(f"{name}: {dumps[scale]['events']:,} events, {n_reps} repetition(s)")
        result = run_worker(task, runs_root)
        results[name] = result
        _log(f"{name}: job " + ", ".join(f"{r['run_s']:.1f}" for r in result["reps"])
             + f" s; process {result['process_s']:.1f} s, peak RSS "
             f"{result['memory_mib']['total']:.0f} MiB")
    compare_dumps = {
        scale: ensure_dump(dumps_root, compare_events * scale,
                           max(2, round(compare_events * scale / COMPARE_EVENTS_PER_FILE)),
                           gzip=True)
        for scale in (1, 4)}
    compare = compare_with_python(compare_dumps, runs_root)
    start_up = class_archive_pairs(dumps_root, runs_root, archive_pairs)
    kept_1x = Path(results["dry-1x"]["reps"][-1]["output_dir"])
    for name in results:  # keep the last 1x run's tables for P3, drop the other outputs
        for out in (runs_root / name).glob("rep-*"):
            if out != kept_1x:
                shutil.rmtree(out, ignore_errors=True)

    # ----- P3: upload -------------------------------------------------------------------------
    assert kept_1x is not None
    payload_sample = sendable_sample(sample_path)
    from jobs.config import MAX_EVENTS_PER_REQUEST

    chunk = MAX_EVENTS_PER_REQUEST["capi"]
    capacity_runs = []
    with Emulator(0.0, runs_root / "emulator-0ms.log") as fast:
        emulator_capacity(fast, payload_sample, chunk, 0.5)  # warm-up
        for _ in range(reps):
            capacity_runs.append(emulator_capacity(fast, payload_sample, chunk,
                                                   1.0 if quick else 2.0))
    _log(f"emulator capacity: {[r['events_per_s'] for r in capacity_runs]} events/s")
    with Emulator(latency_ms, runs_root / "emulator-50ms.log") as slow:
        sdk_runs = [sdk_like_baseline(slow, payload_sample, 10 if quick else 20)
                    for _ in range(reps)]
        _log(f"SDK-like client: {[r['events_per_s'] for r in sdk_runs]} events/s")
        upload = run_worker({"name": "upload-1x", "kind": "upload", "dump": dumps[1]["path"],
                             "output_dir": str(kept_1x), "master": MASTER, "url": slow.url,
                             "reps": reps, "work_dir": str(runs_root / "upload")}, runs_root)
    w = upload["with_rejections"]
    _log(f"upload with the rejected events: {w['delivered']:,} delivered, {w['rejected']:,} "
         f"rejected in {w['send_s']:.1f} s, {w['requests']:,} requests")
    _log("upload: " + ", ".join(f"{r['delivered']:,} events in {r['send_s']:.1f} s"
                                for r in upload["reps"]))

    figures = summarize(results, dumps, capacity_runs, sdk_runs, upload, latency_ms, compare)
    if start_up:
        figures["start_up"] = {**start_up, "with_median_s": _median(start_up["with_s"]),
                               "without_median_s": _median(start_up["without_s"])}
    return {
        "issue": 4, "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
        "seconds": round(time.time() - started, 1), "quick": quick, "reps": reps,
        "reps_2x": len(results["dry-2x"]["reps"]),
        "master": MASTER, "machine": _machine(),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "dumps": {f"{k}x": v for k, v in dumps.items()}, "figures": figures,
        "runs": results, "compare": compare,
        "p3_runs": {"capacity": capacity_runs, "sdk_like": sdk_runs, "upload": upload},
    }


def summarize(results: dict[str, dict[str, Any]], dumps: dict[int, dict[str, Any]],
              capacity_runs: list[dict[str, Any]], sdk_runs: list[dict[str, Any]],
              upload: dict[str, Any], latency_ms: float,
              compare: dict[str, Any] | None = None) -> dict[str, Any]:
    """The figures from the raw runs (medians of the repetitions; P6 single whole processes)."""
    def run_s(key: str) -> float:
        return _median([r["run_s"] for r in results[key]["reps"]])

    def cold_s(key: str) -> float:
        return float((results[key].get("warm_up") or results[key]["reps"][0])["run_s"])

    dry4, floor4 = run_s("dry-4x"), run_s("floor-4x")
    p1 = {"ratio": round(dry4 / floor4, 3), "dry_run_s": dry4, "floor_s": floor4,
          "cold_ratio": round(cold_s("dry-4x") / cold_s("floor-4x"), 3),
          "dry_run_cold_s": cold_s("dry-4x"), "floor_cold_s": cold_s("floor-4x"),
          "events": dumps[4]["events"], "target": TARGETS["p1_ratio"],
          "moonshot": TARGETS["p1_moonshot"]}

    median4 = _median_run(results["dry-4x"]["reps"])
    probe = results["dry-4x"].get("read_probe")
    p2 = {"events_per_s": round(dumps[4]["events"] / dry4, 1),
          "payloads_per_s": round(median4["counts"].get("payloads", 0) / dry4, 1),
          "events": dumps[4]["events"], "payloads": median4["counts"].get("payloads", 0),
          "dry_run_s": dry4, "split": median4["split"], "read_probe": probe}

    capacity = _median([r["events_per_s"] for r in capacity_runs])
    sdk = _median([r["events_per_s"] for r in sdk_runs])
    reps = upload["reps"]
    first = reps[0]
    in_flight = first["concurrent_tasks"] * first["max_in_flight"]
    latency_bound = in_flight * first["chunk_size"] / (latency_ms / 1000)
    bound = min(latency_bound, capacity)
    send_rate = _median([r["delivered"] / r["send_s"] for r in reps if r["send_s"] > 0])
    stage_rate = _median([r["delivered"] / r["stage_s"] for r in reps])
    p3 = {"efficiency": round(send_rate / bound, 3),
          "stage_efficiency": round(stage_rate / bound, 3),
          "delivered_per_s": round(send_rate, 1), "stage_delivered_per_s": round(stage_rate, 1),
          "bound": round(bound, 1), "latency_bound": round(latency_bound, 1),
          "emulator_capacity": round(capacity, 1), "in_flight": in_flight,
          "chunk_size": first["chunk_size"], "latency_ms": latency_ms,
          "sdk_like_per_s": round(sdk, 1), "vs_sdk": round(send_rate / sdk, 1) if sdk else None,
          "payloads": upload["payloads"], "delivered": _median([r["delivered"] for r in reps]),
          "with_rejections": {
              "payloads": upload["all_payloads"],
              "delivered": upload["with_rejections"]["delivered"],
              "rejected": upload["with_rejections"]["rejected"],
              "requests": upload["with_rejections"]["requests"],
              "delivered_per_s": round(upload["with_rejections"]["delivered"]
                                       / max(upload["with_rejections"]["send_s"], 1e-9), 1),
          },
          "rejected": _median([r["rejected"] for r in reps]),
          "requests": _median([r["requests"] for r in reps]),
          "target": TARGETS["p3_efficiency"], "target_vs_sdk": TARGETS["p3_vs_sdk"]}

    def peak(key: str) -> dict[str, float]:
        return dict(results[key]["memory_mib"])

    m1, m4 = peak("dry-1x"), peak("dry-4x")
    p4 = {"ratio": round(m4["total"] / m1["total"], 3), "1x_mib": m1, "4x_mib": m4,
          "upload_1x_mib": upload["memory_mib"], "target": TARGETS["p4_ratio"]}

    times = {f"{s}x": run_s(f"dry-{s}x") for s in SCALES}
    p5 = {"ratio": round(times["4x"] / times["1x"], 3), "run_s": times,
          "cold_s": {f"{s}x": cold_s(f"dry-{s}x") for s in SCALES},
          "cold_ratio": round(cold_s("dry-4x") / cold_s("dry-1x"), 3),
          "events": {f"{s}x": dumps[s]["events"] for s in SCALES},
          "target": TARGETS["p5_ratio"]}
    figures = {"p1": p1, "p2": p2, "p3": p3, "p4": p4, "p5": p5}
    if compare:
        p6: dict[str, Any] = {"target": TARGETS["p6_ratio"],
                              "moonshot_4x": TARGETS["p6_moonshot_4x"]}
        for scale, run in compare.items():
            job, script = run["job"], run["python"]
            p6[scale] = {
                "ratio": round(job["process_s"] / script["process_s"], 3),
                "job_s": job["process_s"], "python_s": script["process_s"],
                "events": run["events"], "bytes": run["bytes"],
                "job_payloads": job["counts"].get("payloads"),
                "python_payloads": script["counts"].get("payloads"),
                "counts_agree": job["counts"] == script["counts"],
                "python_profile": script["profile"],
            }
        figures["p6"] = p6
    return figures


# ----- the table --------------------------------------------------------------------------------
def _verdict(value: float, target: float, higher_is_better: bool = False) -> str:
    met = value >= target if higher_is_better else value <= target
    if met:
        return "met"
    miss = (target / value - 1) if higher_is_better else (value / target - 1)
    return f"missed by {miss:.0%}"


def _p6_rows(p6: dict[str, Any] | None) -> list[str]:
    if not p6:
        return []
    rows = []
    for scale in ("1x", "4x"):
        if scale not in p6:
            continue
        r = p6[scale]
        target = p6["target"] if scale == "1x" else p6["moonshot_4x"]
        agree = "counts agree" if r["counts_agree"] else (
            f"COUNTS DIFFER: payloads {r['job_payloads']} / {r['python_payloads']}")
        rows.append(
            f"| P6 cold dry run / Python script, {r['events']:,} events "
            f"({r['bytes'] / 1e6:,.0f} MB gz), whole processes | {r['ratio']:.2f} "
            f"({r['job_s']:.1f} s / {r['python_s']:.1f} s; {agree}) | "
            f"{'<' if scale == '1x' else '≤'} {target}{'' if scale == '1x' else ' (moonshot)'} | "
            f"{_verdict(r['ratio'], target)} |")
    return rows


def _start_up_rows(start_up: dict[str, Any] | None) -> list[str]:
    if not start_up:
        return []
    with_s, without_s = start_up["with_median_s"], start_up["without_median_s"]
    agree = "counts agree" if start_up["counts_agree"] else "COUNTS DIFFER"
    return [f"| cold dry run with / without the class archive, {start_up['events']:,} events,"
            f" median of {start_up['pairs']} alternating pairs | {with_s / without_s:.2f} "
            f"({with_s:.1f} s / {without_s:.1f} s; {agree}) | - | - |"]


def format_table(results: dict[str, Any]) -> str:
    f = results["figures"]
    p1, p2, p3, p4, p5 = f["p1"], f["p2"], f["p3"], f["p4"], f["p5"]
    m = results["machine"]
    split = p2["split"]
    lines = [
        f"Benchmark: {m.get('cores')} cores ({m.get('cpu', '?')}), "
        f"{m.get('memory_gib', '?')} GiB, Spark {m.get('spark', '?')}, master {results['master']},"
        f" median of {results['reps']} (2x dry run: {results.get('reps_2x', results['reps'])}),"
        f" load average {results['load_average']['before'][0]:.1f}"
        f" → {results['load_average']['after'][0]:.1f}, {results['seconds'] / 60:.1f} min",
        "",
        "| figure | value | target | result |",
        "|---|---|---|---|",
        f"| P1 dry run / floor, {p1['events']:,} events, warm (cold) | {p1['ratio']:.2f} "
        f"({p1['dry_run_s']:.1f} s / {p1['floor_s']:.1f} s); cold {p1['cold_ratio']:.2f} | "
        f"≤ {p1['target']} (moonshot {p1.get('moonshot', '-')}) | "
        f"{_verdict(p1['ratio'], p1['target'])} |",
        *_p6_rows(f.get("p6")),
        *_start_up_rows(f.get("start_up")),
        f"| P2 dry-run throughput, local[2] | {p2['events_per_s']:,.0f} events/s "
        f"({p2['payloads_per_s']:,.0f} payloads/s) | - | - |",
        f"| P3 upload efficiency (50 ms/request) | {p3['efficiency']:.2f} "
        f"({p3['delivered_per_s']:,.0f} / {p3['bound']:,.0f} events/s) | ≥ {p3['target']} | "
        f"{_verdict(p3['efficiency'], p3['target'], True)} |",
        f"| P3 job / SDK-like client | {p3['vs_sdk']}x ({p3['sdk_like_per_s']:,.0f} events/s) |"
        f" ≥ {p3['target_vs_sdk']:.0f}x | "
        f"{_verdict(p3['vs_sdk'] or 0, p3['target_vs_sdk'], True)} |",
        f"| P4 peak RSS 4x / 1x | {p4['ratio']:.2f} ({p4['4x_mib']['total']:,.0f} / "
        f"{p4['1x_mib']['total']:,.0f} MiB) | ≤ {p4['target']} | "
        f"{_verdict(p4['ratio'], p4['target'])} |",
        f"| P5 dry-run time 4x / 1x | {p5['ratio']:.2f} ({p5['run_s']['4x']:.1f} s / "
        f"{p5['run_s']['1x']:.1f} s) | ≤ {p5['target']} | {_verdict(p5['ratio'], p5['target'])} |",
        "",
        f"P1: first (cold) runs of their processes, JVM warm-up included: "
        f"{p1['dry_run_cold_s']:.1f} s / {p1['floor_cold_s']:.1f} s = {p1['cold_ratio']:.2f}.",
        "P2 time split by Spark stage (wall s / task s): " + "; ".join(
            f"{name} {v['wall_s']:.1f} / {v['task_s']:.1f}" for name, v in split.items())
        + (f"; of the scan, reading and parsing alone (the job's read functions, no-op sink): "
           f"{p2['read_probe']['wall_s']:.1f} / {p2['read_probe']['task_s']:.1f}"
           if p2.get("read_probe") else "") + ".",
        f"P3: {p3['in_flight']} requests in flight x {p3['chunk_size']} events / "
        f"{p3['latency_ms']:.0f} ms = {p3['latency_bound']:,.0f} events/s; emulator capacity "
        f"(minimal client, 0 ms) {p3['emulator_capacity']:,.0f} events/s; "
        f"{p3['delivered']:,.0f} of {p3['payloads']:,} payloads delivered, "
        f"{p3['rejected']:,.0f} rejected, {p3['requests']:,.0f} requests; whole upload stage "
        f"(Spark job, ledger) {p3['stage_delivered_per_s']:,.0f} events/s = "
        f"{p3['stage_efficiency']:.2f} of the bound. First upload of all "
        f"{p3['with_rejections']['payloads']:,} payloads, {p3['with_rejections']['rejected']:,} "
        f"of which the emulator rejects (each costs its chunk a request more): "
        f"{p3['with_rejections']['delivered_per_s']:,.0f} events/s in "
        f"{p3['with_rejections']['requests']:,} requests; the measured uploads send the others.",
        "P4 peak RSS MiB (python driver / JVM / python workers): 1x " + " / ".join(
            f"{p4['1x_mib'][r]:,.0f}" for r in ("python_driver", "jvm", "python_workers"))
        + ", 4x " + " / ".join(
            f"{p4['4x_mib'][r]:,.0f}" for r in ("python_driver", "jvm", "python_workers"))
        + ", upload 1x " + " / ".join(
            f"{p4['upload_1x_mib'][r]:,.0f}" for r in ("python_driver", "jvm",
                                                        "python_workers")) + ".",
        "P5 dry-run time: " + ", ".join(
            f"{k} ({p5['events'][k]:,} events) {v:.1f} s" for k, v in p5["run_s"].items())
        + "; first (cold) runs: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in p5["cold_s"].items())
        + f" (4x/1x {p5['cold_ratio']:.2f}).",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m jobs.tools.benchmark",
        description="Benchmark the backfill job: dry run vs Spark's floor, throughput, upload "
                    "efficiency, memory and scaling. Prints a table and writes JSON.")
    ap.add_argument("--events", type=int, default=None,
                    help=f"events of the largest dump (4x; P1, P2), default {DEFAULT_EVENTS:,};"
                         " the base (1x) is a quarter of it")
    ap.add_argument("--reps", type=int, default=None,
                    help="repetitions per measurement (default 3; medians are reported)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: {QUICK_EVENTS:,} events, one repetition")
    ap.add_argument("--work-dir", default=str(DEFAULT_WORK_DIR),
                    help="dumps and runs (default out/benchmark, git-ignored)")
    ap.add_argument("--json", default=None,
                    help="where to write the results (default <work-dir>/results.json)")
    ap.add_argument("--reps-2x", type=int, default=1,
                    help="repetitions of the 2x dry run (P5's middle point; default 1)")
    ap.add_argument("--compare-events", type=int, default=None,
                    help=f"P6's base dump (gzipped), default {COMPARE_EVENTS:,} events "
                         f"(--quick: {QUICK_EVENTS:,}); 4x is also run")
    ap.add_argument("--archive-pairs", type=int, default=None,
                    help="cold whole dry runs of a 4,000-event dump with and without the class"
                         " archive, alternating (default 2, --quick: 0)")
    ap.add_argument("--latency-ms", type=float, default=LATENCY_MS,
                    help="emulator latency per request for P3 (default 50)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        return worker_main(argv[1], argv[2])
    args = parse_args(argv)
    events = args.events or (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    reps = args.reps or (1 if args.quick else 3)
    if events < 4 or reps < 1:
        print("error: --events must be >= 4 and --reps >= 1", file=sys.stderr)
        return 2
    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    compare_events = args.compare_events or (QUICK_EVENTS if args.quick else COMPARE_EVENTS)
    results = run_benchmark(events, reps, work, quick=args.quick, latency_ms=args.latency_ms,
                            reps_2x=args.reps_2x, compare_events=compare_events,
                            archive_pairs=(args.archive_pairs if args.archive_pairs is not None
                                           else 0 if args.quick else 2))
    table = format_table(results)
    results["table"] = table
    json_path = Path(args.json) if args.json else work / "results.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(table)
    print(f"\nJSON: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
