"""Listing a dump: hidden, zero-byte and verification files, excluded folders, date folders
pruned by the date range and by Meta's age limit."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from jobs.conversion.listing import NoInputFiles, expiry_date, list_input_files
from jobs.conversion.read import parse_batches, read_lines
from tests.helpers import NOW


@pytest.fixture
def dump(tmp_path):
    root = tmp_path / "dump"
    (root / "2026-10-01").mkdir(parents=True)
    (root / "2026-10-02" / "nested").mkdir(parents=True)
    (root / "2026-10-09").mkdir(parents=True)
    (root / "2026-10-01" / "a.txt").write_text('{"events": []}\n  \n{"events": []}\n')
    with gzip.open(root / "2026-10-02" / "nested" / "b.txt.gz", "wt") as f:
        f.write('{"events": []}\n[1]\n')
    (root / "2026-10-09" / "c.txt").write_text('{"events": []}\n')
    (root / "mParticle_Bucket_Verification_20261001-101010.txt").write_text("{}")
    (root / "mparticle_validation.txt").write_text("{}")
    (root / "_SUCCESS").write_text("")
    (root / ".hidden.txt").write_text('{"events": []}\n')
    (root / "_tmp").mkdir()
    (root / "_tmp" / "d.txt").write_text('{"events": []}\n')
    (root / "empty.txt").write_text("")
    return root


def test_listing_skips_what_is_not_data(spark, dump):
    files = list_input_files(spark, [str(dump)]).paths
    names = sorted(Path(f).name for f in files)
    assert names == ["a.txt", "b.txt.gz", "c.txt"]


def test_globs_and_date_pruning(spark, dump):
    assert len(list_input_files(spark, [str(dump / "2026-10-0[12]")]).paths) == 2
    pruned = list_input_files(spark, [str(dump)], from_date="2026-10-05",
                              to_date="2026-10-31").paths
    assert [Path(f).name for f in pruned] == ["c.txt"]


def test_no_files_is_a_clear_error(spark, tmp_path):
    with pytest.raises(NoInputFiles, match="no data files"):
        list_input_files(spark, [str(tmp_path)])


def test_the_jobs_own_output_inside_the_input_is_not_read(spark, dump):
    out = dump / "out"
    (out / "payloads").mkdir(parents=True)
    (out / "payloads" / "part-0.parquet").write_text("PAR1 not a dump")
    files = list_input_files(spark, [str(dump)], exclude=[str(out)]).paths
    assert sorted(Path(f).name for f in files) == ["a.txt", "b.txt.gz", "c.txt"]


@pytest.fixture
def years_of_dumps(tmp_path):
    root = tmp_path / "dumps"
    for day in ("2024-01-05", "2026-08-30", "2026-08-31", "2026-09-01", "2026-11-04"):
        (root / day).mkdir(parents=True)
        (root / day / "part-0.json").write_text('{"events": []}\n' * 3)
    (root / "undated").mkdir()
    (root / "undated" / "x.json").write_text('{"events": []}\n')
    return root


def test_expiry_date_is_the_day_of_the_oldest_sendable_event():
    assert expiry_date(NOW, 62) == "2026-09-04"  # 2026-11-05T00:00Z - 62 days
    assert expiry_date(NOW - 1, 62) == "2026-09-03"


def test_folders_that_can_only_hold_expired_events_are_pruned_and_counted(spark,
                                                                          years_of_dumps):
    listing = list_input_files(spark, [str(years_of_dumps)], expiry="2026-09-01")
    kept = sorted(Path(f).parent.name for f in listing.paths)
    assert kept == ["2026-08-31", "2026-09-01", "2026-11-04", "undated"]  # one day look-back
    assert listing.expired_files == 2 and listing.expired_bytes == 2 * 45
    wider = list_input_files(spark, [str(years_of_dumps)], expiry="2026-09-01", lookback_days=3)
    assert wider.expired_files == 1
    everything = list_input_files(spark, [str(years_of_dumps)])
    assert len(everything.paths) == 6 and everything.expired_files == 0


def test_the_date_range_still_prunes_beside_the_expiry(spark, years_of_dumps):
    listing = list_input_files(spark, [str(years_of_dumps)], from_date="2026-11-01",
                               to_date="2026-11-30", expiry="2026-09-01")
    assert sorted(Path(f).parent.name for f in listing.paths) == ["2026-11-04", "undated"]
    # folders outside the range are not counted as expired: they were never in scope
    assert listing.expired_files == 0


def test_a_glob_a_file_and_a_missing_path_together(spark, dump):
    one = dump / "2026-10-01" / "a.txt"
    listing = list_input_files(spark, [str(one), str(dump / "2026-10-0[9]"),
                                       str(dump / "nowhere")])
    assert sorted(Path(f).name for f in listing.paths) == ["a.txt", "c.txt"]
    assert all(f.length > 0 and f.modified > 0 for f in listing.files)


def test_the_same_file_twice_is_listed_once(spark, dump):
    listing = list_input_files(spark, [str(dump), str(dump / "2026-10-01")])
    assert sorted(Path(f).name for f in listing.paths) == ["a.txt", "b.txt.gz", "c.txt"]


def test_read_lines_gzip_and_blank_lines(spark, dump):
    lines = read_lines(spark, list_input_files(spark, [str(dump)]).paths)
    rows = lines.collect()
    assert len(rows) == 5  # the whitespace-only line is not an input line
    assert sum(1 for r in rows if r["source_file"].endswith("b.txt.gz")) == 2
    reasons = [r["quarantine_reason"] for r in parse_batches(lines).collect()]
    assert reasons.count("not_object") == 1


def test_a_run_skips_expired_date_folders_and_says_so(spark, years_of_dumps, tmp_path):
    from jobs.config import load_config
    from jobs.pipeline import run_backfill
    from tests.helpers import NOW

    config = load_config(None, {"input": [str(years_of_dumps)], "output_dir": str(tmp_path / "o"),
                                "dry_run": True, "reference_time": NOW, "progress": "off"})
    report = run_backfill(spark, config, None)
    assert report.expired_files_skipped == 4 and report.expired_bytes_skipped == 4 * 45
    assert report.counts["input_files"] == 2 and report.counts["input_lines"] == 4
    assert "4 files (180 bytes) in date folders before 2026-09-03" in report.text()
    kept = load_config(None, {"input": [str(years_of_dumps)], "output_dir": str(tmp_path / "p"),
                              "dry_run": True, "reference_time": NOW, "progress": "off",
                              "prune_expired_date_folders": False})
    everything = run_backfill(spark, kept, None)
    assert everything.counts["input_files"] == 6 and everything.expired_files_skipped == 0
