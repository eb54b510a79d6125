"""Scheduled reprocessing (issue 5): date ranges, --retry-failed, progress, past-run reports."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from jobs import report as report_cli
from jobs.config import load_config
from jobs.pipeline import run_backfill
from jobs.tools.local_graph_api import GraphApiEmulator
from tests.helpers import NOW, batch, commerce

#: Whole runs of the job (Spark, its Python workers and the emulator): not in `make test-fast`.
pytestmark = pytest.mark.slow

TOKEN = "rerun-token"
DAYS = ("2026-10-01", "2026-10-02", "2026-10-03")
PER_DAY = 12


def day_ms(day: str, second: int) -> int:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()
    return int(start + 3600 + second) * 1000


@pytest.fixture(scope="module")
def dated_dump(tmp_path_factory):
    """Three date folders of 12 events each, plus an old folder holding only a bad line."""
    root = tmp_path_factory.mktemp("dated")
    for day in DAYS:
        folder = root / day
        folder.mkdir()
        lines = [batch([commerce(source_message_id=f"{day}-{i}", ts=day_ms(day, i))])
                 for i in range(PER_DAY)]
        (folder / "batch.txt").write_text("\n".join(lines) + "\n")
    (root / "2026-09-01").mkdir()
    (root / "2026-09-01" / "old.txt").write_text("this line is not json\n")
    return root


def config(root, out, url, **extra):
    return load_config(None, {
        "input": [str(root)], "output_dir": str(out), "reference_time": NOW,
        "upload.base_url": url, "upload.set_id": "99", "upload.chunk_size": 5,
        "upload.backoff_base_seconds": 0.01, "upload.backoff_max_seconds": 0.02,
        "upload.max_attempts": 2, "progress": "off", **extra,
    })


def sent_days(emu) -> Counter:
    return Counter(e["event_id"][:10] for _, e in emu.accepted_events())


def test_date_range_reruns_prune_folders_and_are_idempotent(spark, dated_dump, tmp_path):
    with GraphApiEmulator(token=TOKEN, now=NOW).start() as emu:
        day2 = config(dated_dump, tmp_path, emu.url, from_date=DAYS[1], to_date=DAYS[1])
        first = run_backfill(spark, day2, TOKEN)
        assert first.status == "succeeded", first.text()
        assert sent_days(emu) == {DAYS[1]: PER_DAY}
        c = first.counts
        assert c["input_files"] == 3  # 2026-09-01 was pruned: its bad line was never read
        assert c["quarantined"] == 0
        assert c["payloads"] == PER_DAY and c["out_of_range"] == 2 * PER_DAY
        assert c["events"] == c["candidate_events"] + c["out_of_range"]

        again = run_backfill(spark, day2, TOKEN)  # the scheduler re-runs the same day
        assert again.status == "nothing_to_do" and "already delivered" in again.message
        assert any("payloads were reused" in n for n in again.notes)  # no pass over the input
        assert again.counts == first.counts
        assert emu.requests["total"] == first.delivery["requests"]

        all_days = config(dated_dump, tmp_path, emu.url, from_date=DAYS[0], to_date=DAYS[2])
        wider = run_backfill(spark, all_days, TOKEN)
        assert wider.delivery["already_delivered"] == PER_DAY
        assert sent_days(emu) == {d: PER_DAY for d in DAYS}  # each event exactly once


def test_retry_failed_resends_only_failed_events(spark, dated_dump, tmp_path):
    with GraphApiEmulator(token=TOKEN, now=NOW).start() as healthy, \
            GraphApiEmulator(token=TOKEN, now=NOW, error_5xx_rate=1.0).start() as broken:
        ok = run_backfill(spark, config(dated_dump, tmp_path, healthy.url, from_date=DAYS[0],
                                        to_date=DAYS[0]), TOKEN)
        assert ok.status == "succeeded"
        failing = run_backfill(spark, config(dated_dump, tmp_path, broken.url, from_date=DAYS[1],
                                             to_date=DAYS[1]), TOKEN)
        assert failing.status == "failed" and failing.exit_code == 1
        assert failing.delivery["failed"] == PER_DAY

        retry = run_backfill(spark, config(dated_dump, tmp_path, healthy.url,
                                           **{"upload.retry_failed": True}), TOKEN)
        assert retry.status == "succeeded", retry.text()
        assert retry.delivery["delivered"] == PER_DAY  # day 2 only
        assert retry.delivery["already_delivered"] == PER_DAY  # day 1
        assert retry.delivery["not_selected"] == PER_DAY  # day 3: never attempted, left alone
        assert sent_days(healthy) == {DAYS[0]: PER_DAY, DAYS[1]: PER_DAY}

        nothing = run_backfill(spark, config(dated_dump, tmp_path, healthy.url,
                                             **{"upload.retry_failed": True}), TOKEN)
        assert nothing.status == "nothing_to_do" and "nothing to retry" in nothing.message

        rest = run_backfill(spark, config(dated_dump, tmp_path, healthy.url), TOKEN)
        assert rest.delivery["delivered"] == PER_DAY
        assert sent_days(healthy) == {d: PER_DAY for d in DAYS}


def test_progress_is_shown_during_an_upload(spark, dated_dump, tmp_path, capsys):
    with GraphApiEmulator(token=TOKEN, now=NOW, latency_ms=500).start() as emu:
        cfg = config(dated_dump, tmp_path, emu.url, progress="bar",
                     **{"upload.partitions": 4, "upload.max_in_flight": 1,
                        "upload.chunk_size": 3})
        report = run_backfill(spark, cfg, TOKEN)
    assert report.status == "succeeded"
    err = capsys.readouterr().err
    lines = [part for part in err.split("\r") if part.startswith("upload ")]
    delivered = [int(line.split("/")[0].split()[-1].replace(",", "")) for line in lines]
    total = 3 * PER_DAY
    assert len(lines) >= 3 and delivered == sorted(delivered)
    assert delivered[-1] == total and f"/{total} delivered" in lines[-1]
    assert any(0 < n < total for n in delivered)  # it moved while the upload ran
    assert "events/s" in lines[-1] and "ETA" in lines[-1] and "failures 0" in lines[-1]


def test_report_of_a_past_run_equals_that_run(spark, dated_dump, tmp_path, capsys):
    with GraphApiEmulator(token=TOKEN, now=NOW, reject_rate=0.2, seed=4).start() as emu:
        cfg = config(dated_dump, tmp_path, emu.url)
        first = run_backfill(spark, cfg, TOKEN)
        run_backfill(spark, cfg, TOKEN)  # a later run
    assert first.errors and first.errors[0]["code"] == 100
    capsys.readouterr()
    assert report_cli.main(["--output-dir", str(tmp_path), "--run-id", first.run_id]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == first.text()
    runs = spark.read.format("delta").load(str(tmp_path / "runs"))
    row = runs.where(runs.run_id == first.run_id).first()
    stored = json.loads(row["report"])
    assert stored["counts"] == first.counts and stored["delivery"] == first.delivery
    assert row["counts"]["delivery.rejected"] == first.delivery["rejected"] > 0
