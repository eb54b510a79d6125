"""Reading dumps: listing, gzip, hidden and verification files, quarantine reasons, real samples."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from jobs.conversion.listing import NoInputFiles, list_input_files
from jobs.conversion.read import parse_batches, read_lines
from tests.helpers import PUBLISHED_SAMPLES

MALFORMED = {
    '{"events": [{"event_type": "commerce_event"': "invalid_json",
    "not json at all": "invalid_json",
    '[{"events": []}]': "not_object",
    '"a bare string"': "not_object",
    "42": "not_object",
    '{"events": {"event_type": "commerce_event"}}': "events_not_array",
    '{"events": "nope"}': "events_not_array",
    '{"events": [1, 2]}': "schema_mismatch",
}
GOOD = ['{"events": null}', '{"events": []}', "{}", '  {"events": [], "mpid": 1}  ']


def parse(spark, lines):
    df = spark.createDataFrame([(x, "f") for x in lines], "value string, source_file string")
    return {r["value"]: r["quarantine_reason"] for r in parse_batches(df).collect()}


def test_quarantine_reasons(spark):
    got = parse(spark, list(MALFORMED) + GOOD)
    for line, reason in MALFORMED.items():
        assert got[line] == reason, line
    for line in GOOD:
        assert got[line] is None, line


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


def test_read_lines_gzip_and_blank_lines(spark, dump):
    lines = read_lines(spark, list_input_files(spark, [str(dump)]).paths)
    rows = lines.collect()
    assert len(rows) == 5  # the whitespace-only line is not an input line
    assert sum(1 for r in rows if r["source_file"].endswith("b.txt.gz")) == 2
    reasons = [r["quarantine_reason"] for r in parse_batches(lines).collect()]
    assert reasons.count("not_object") == 1


def test_every_published_batch_parses(spark):
    batches = (PUBLISHED_SAMPLES / "batches.ndjson").read_text().splitlines()
    assert len(batches) == 11
    single = [json.dumps(json.loads(p.read_text()))
              for p in sorted(PUBLISHED_SAMPLES.glob("*.json"))
              if not p.name.startswith(("meta-", "mparticle-docs-jsonref-"))
              and "nearmiss" not in p.name]
    got = parse(spark, batches + single)
    assert all(reason is None for reason in got.values()), got


def test_the_jobs_own_output_inside_the_input_is_not_read(spark, dump):
    out = dump / "out"
    (out / "payloads").mkdir(parents=True)
    (out / "payloads" / "part-0.parquet").write_text("PAR1 not a dump")
    files = list_input_files(spark, [str(dump)], exclude=[str(out)]).paths
    assert sorted(Path(f).name for f in files) == ["a.txt", "b.txt.gz", "c.txt"]
