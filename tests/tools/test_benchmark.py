"""Smoke test of the benchmark (issue 4): ``python -m jobs.tools.benchmark --quick`` runs end to end
on a tiny input, measures the real job, prints the table and writes its JSON.

No figure is asserted as a time or a ratio target: speed is measured by running the benchmark,
not by the test suite. What is asserted is that the figures exist, are computed from runs that
did the job's real work (counts reconcile with the generator's manifest, the upload delivered
what the emulator accepted) and that the documented command works.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from jobs.tools.benchmark import format_table, split_by_stage, summarize
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess,
                                                                   dict]:
    work = tmp_path_factory.mktemp("benchmark")
    json_path = work / "figures.json"
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.tools.benchmark", "--quick", "--work-dir", str(work),
         "--json", str(json_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(json_path.read_text(encoding="utf-8"))


def test_quick_run_prints_every_figure(quick_run) -> None:
    proc, results = quick_run
    for label in ("P1 dry run / floor", "P2 dry-run throughput", "P3 upload efficiency",
                  "P3 job / SDK-like client", "P4 peak RSS", "P5 dry-run time",
                  "P6 cold dry run / Python script"):
        assert label in proc.stdout
    assert results["table"] in proc.stdout
    figures = results["figures"]
    for key, name in (("p1", "ratio"), ("p2", "events_per_s"), ("p3", "efficiency"),
                      ("p4", "ratio"), ("p5", "ratio")):
        value = figures[key][name]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)
    for scale in ("1x", "4x"):
        ratio = figures["p6"][scale]["ratio"]
        assert isinstance(ratio, float) and math.isfinite(ratio) and ratio > 0, (scale, ratio)


def test_python_script_and_job_agree_on_the_comparison_dumps(quick_run) -> None:
    """P6 compares like with like: the whole-process dry run and the Python script counted the
    same payloads and the same skips on each dump."""
    _, results = quick_run
    for scale in ("1x", "4x"):
        run = results["compare"][scale]
        assert run["job"]["counts"]["payloads"] > 0
        assert run["job"]["counts"] == run["python"]["counts"], scale
        assert results["figures"]["p6"][scale]["counts_agree"] is True


def test_dry_runs_do_the_jobs_work(quick_run) -> None:
    """Every timed dry run converted its whole dump: the job's counts match the generator."""
    _, results = quick_run
    for scale in ("1x", "2x", "4x"):
        dump = results["dumps"][scale]
        measured = results["runs"][f"dry-{scale}"]
        assert measured["memory_mib"]["jvm"] > 0
        for run in measured["reps"]:
            counts = run["counts"]
            assert run["status"] == "succeeded"
            assert counts["input_lines"] == dump["lines"]
            assert counts["events"] == dump["events"]
            assert counts["payloads"] == dump["convertible"]
            assert counts["reconciles"] == 1
    assert results["figures"]["p5"]["events"]["4x"] > results["figures"]["p5"]["events"]["1x"]


def test_upload_delivers_every_payload_to_the_loopback_emulator(quick_run) -> None:
    _, results = quick_run
    upload = results["p3_runs"]["upload"]
    assert upload["all_payloads"] == results["dumps"]["1x"]["convertible"]
    first = upload["with_rejections"]
    assert first["failed"] == 0
    assert first["delivered"] + first["rejected"] == upload["all_payloads"]
    assert first["accepted_by_emulator"] == first["delivered"]
    # the measured uploads send what the emulator accepted the first time, all of it
    assert upload["payloads"] == first["delivered"]
    for rep in upload["reps"]:
        assert rep["status"] == "succeeded"
        assert (rep["failed"], rep["rejected"]) == (0, 0)
        assert rep["delivered"] == rep["accepted_by_emulator"] == upload["payloads"]
        assert rep["body_format"] == "json"
    assert results["p3_runs"]["sdk_like"][0]["events"] > 0


def test_stage_split_groups_stages_by_what_they_do() -> None:
    def stage(i, start, end, **kw):
        base = {"stage": i, "attempt": 0, "status": "COMPLETE", "task_s": 1.0, "cpu_s": 0.5,
                "gc_s": 0.0, "input_bytes": 0, "output_bytes": 0, "shuffle_read_bytes": 0,
                "shuffle_write_bytes": 0, "submitted_ms": start, "completed_ms": end}
        return {**base, **kw}

    stages = [
        stage(0, 1000, 5000, input_bytes=100, shuffle_write_bytes=10),  # scan
        stage(1, 5000, 7000, shuffle_read_bytes=10, output_bytes=50),  # write
        stage(2, 7000, 8000, input_bytes=100),  # quarantine re-read
        stage(3, 8500, 9000),  # Delta log
        stage(4, 2000, 3000, status="FAILED"),  # ignored
    ]
    split = split_by_stage(stages, input_bytes=100, started_ms=0, finished_ms=10_000)
    assert split["read+transform"]["wall_s"] == 4.0
    assert split["write"]["wall_s"] == 2.0
    assert split["quarantine"]["wall_s"] == 1.0
    assert split["delta+bookkeeping"]["wall_s"] == 0.5
    assert split["driver only"]["wall_s"] == 10.0 - 7.5


def test_summary_flags_missed_targets(quick_run) -> None:
    """The table says "met" or by how much a target was missed, from the figures themselves."""
    _, results = quick_run
    slow = json.loads(json.dumps(results))
    for run in slow["runs"]["dry-4x"]["reps"]:
        run["run_s"] = 10 * slow["figures"]["p1"]["floor_s"]
    slow["figures"] = summarize(slow["runs"], {int(k[0]): v for k, v in slow["dumps"].items()},
                                slow["p3_runs"]["capacity"], slow["p3_runs"]["sdk_like"],
                                slow["p3_runs"]["upload"], 50.0)
    table = format_table(slow)
    p1_row = next(line for line in table.splitlines() if line.startswith("| P1"))
    assert "| 10.00 " in p1_row and "missed by 300%" in p1_row


def test_start_up_row_reports_the_archive_pairs_and_their_counts(quick_run) -> None:
    """The cold-start row gives the with/without medians and flags runs whose counts differ."""
    _, results = quick_run
    assert "start_up" not in results["figures"]  # --quick runs no pairs
    pairs = json.loads(json.dumps(results))
    pairs["figures"]["start_up"] = {"events": 4018, "pairs": 3, "with_median_s": 39.0,
                                    "without_median_s": 45.0, "counts_agree": True}
    row = next(line for line in format_table(pairs).splitlines() if "class archive" in line)
    assert "| 0.87 (39.0 s / 45.0 s; counts agree) |" in row and "4,018 events" in row
    pairs["figures"]["start_up"]["counts_agree"] = False
    assert "COUNTS DIFFER" in format_table(pairs)
