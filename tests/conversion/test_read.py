"""Reading dumps: gzip, quarantine reasons (line, parse and file level), real samples."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import ledger
from jobs.config import load_config
from jobs.conversion.read import (
    LINE_GUARD_LIMIT,
    LineLimit,
    kept_quarantine_rows,
    line_guard_available,
    parse_batches,
    quarantine_from_kept,
    quarantine_rows,
    read_lines,
)
from jobs.pipeline import run_backfill
from tests.helpers import NOW, PUBLISHED_SAMPLES, batch, commerce

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


def test_every_published_batch_parses(spark):
    batches = (PUBLISHED_SAMPLES / "batches.ndjson").read_text().splitlines()
    assert len(batches) == 11
    single = [json.dumps(json.loads(p.read_text()))
              for p in sorted(PUBLISHED_SAMPLES.glob("*.json"))
              if not p.name.startswith(("meta-", "mparticle-docs-jsonref-"))
              and "nearmiss" not in p.name]
    got = parse(spark, batches + single)
    assert all(reason is None for reason in got.values()), got


def test_invalid_utf8_is_quarantined_a_literal_replacement_character_is_not(spark, tmp_path):
    bad = b'{"events": [], "user_identities": {"email": "j\xe9r\xf4me@example.com"}}\n'
    literal = '{"events": [], "user_identities": {"email": "\ufffd@example.com"}}\n'.encode()
    escaped = b'{"events": [], "user_identities": {"email": "\\ufffd@example.com"}}\n'
    path = tmp_path / "mixed.json"
    path.write_bytes(bad + literal + escaped)
    rows = parse_batches(read_lines(spark, [str(path)])).collect()
    reasons = [r["quarantine_reason"] for r in rows]
    assert reasons == ["invalid_utf8", None, None]
    assert rows[0]["batch"] is None  # never parsed, so never hashed


def test_an_empty_array_of_user_attributes_is_an_empty_object(spark):
    lines = ['{"events": [], "user_attributes": []}',
             '{"events": [], "user_attributes": [ ]}',
             '{"events": [], "user_attributes": ["$city"]}',
             '{"events": [], "user_attributes": {"$city": "Paris"}}']
    df = spark.createDataFrame([(x, "f") for x in lines], "value string, source_file string")
    rows = {r["value"]: r for r in parse_batches(df).collect()}
    for line in lines[:2]:
        assert rows[line]["quarantine_reason"] is None, line
        assert rows[line]["batch"]["user_attributes"] == {}
        assert rows[line]["batch"]["events"] == []
    assert rows[lines[2]]["quarantine_reason"] == "schema_mismatch"
    assert rows[lines[3]]["batch"]["user_attributes"] == {"$city": "Paris"}


def _purchase(n: int) -> str:
    return batch([commerce(source_message_id=f"m-{n}", event_id=str(1000 + n))])


@pytest.fixture
def bad_files_dump(tmp_path):
    """One good file, a truncated gzip, a plain file named .gz, a gzip named .json and a file
    with one line over the limit: five convertible batches can be read."""
    root = tmp_path / "dump"
    root.mkdir()
    (root / "good.json").write_text(_purchase(1) + "\n" + _purchase(2) + "\n")
    whole = gzip.compress("".join(_purchase(n) + "\n" for n in range(10, 400)).encode())
    (root / "truncated.json.gz").write_bytes(whole[: len(whole) // 2])
    (root / "plain.json.gz").write_text(_purchase(3) + "\n")
    (root / "gzipped.json").write_bytes(gzip.compress((_purchase(4) + "\n").encode()))
    (root / "long.json").write_text(_purchase(5) + "\n" + '{"events": [], "pad": "'
                                    + "x" * 5000 + '"}\n')
    return root


def test_one_bad_file_does_not_sink_the_run(spark, bad_files_dump, tmp_path):
    config = load_config(None, {"input": [str(bad_files_dump)], "output_dir": str(tmp_path / "o"),
                                "dry_run": True, "reference_time": NOW, "max_line_bytes": 4096,
                                "progress": "off"})
    report = run_backfill(spark, config, None)
    c = report.counts
    assert report.status == "succeeded" and c["reconciles"] == 1, report.text()
    assert c["batches"] == 5 and c["payloads"] == 5
    assert c["quarantined.corrupt_file"] == 1 and c["quarantined.line_too_large"] == 1
    assert c["input_lines"] == c["batches"] + c["quarantined"] == 7
    rows = {(Path(r["source_file"]).name, r["reason"]) for r in
            ledger.read_table(spark, config.table("quarantine")).collect()}
    assert rows == {("truncated.json.gz", "corrupt_file"), ("long.json", "line_too_large")}
    assert any("truncated.json.gz" in n for n in report.notes)
    sent = {json.loads(r["payload"])["event_id"] for r in
            ledger.read_table(spark, config.table("payloads")).collect()}
    assert sent == {"m-1", "m-2", "m-3", "m-4", "m-5"}
    assert not list((tmp_path / "o").glob("_input/*")), "the renamed copies are removed"


# ----- lines bounded while read (the line guard and Hadoop's bound) ---------------------------
MIB = 1024 * 1024


def test_the_line_guard_is_on_the_classpath(spark):
    assert line_guard_available(spark)  # `make setup` builds it into .jars/


def test_a_gzip_line_over_the_limit_is_cut_to_limit_plus_one_bytes(spark, tmp_path):
    long_line = b'{"events": [], "pad": "' + b"x" * (5 * MIB) + b'"}'
    path = tmp_path / "dump.json.gz"
    # two gzip members (as `cat a.gz b.gz` makes), \n and \r\n lines
    path.write_bytes(gzip.compress(b'{"events": []}\r\n' + long_line + b"\r\n")
                     + gzip.compress(b'{"mpid": "7"}\n' + long_line))
    rows = parse_batches(read_lines(spark, [str(path)], limit=LineLimit(MIB, guarded=True)),
                         MIB).collect()
    assert [(len(r["value"].encode()), r["quarantine_reason"]) for r in rows] == [
        (14, None), (MIB + 1, "line_too_large"), (13, None), (MIB + 1, "line_too_large")]
    assert rows[1]["line_digest"] == hashlib.sha256(long_line[:MIB + 1]).hexdigest()


def test_the_codec_cuts_lines_on_both_of_hadoops_entry_points(spark):
    jvm = spark.sparkContext._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration(False)
    conf.set(LINE_GUARD_LIMIT, "4")
    codec = jvm.backfill.hadoop.LineGuardGzipCodec()
    codec.setConf(conf)
    data = gzip.compress(b"ab\nabcdefgh\r\nabcde\rxyz\n\nabcd")

    def read_all(stream) -> bytes:
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))

    pooled = jvm.org.apache.hadoop.io.compress.CodecPool.getDecompressor(codec)
    for stream in (codec.createInputStream(jvm.java.io.ByteArrayInputStream(data)),
                   codec.createInputStream(jvm.java.io.ByteArrayInputStream(data), pooled)):
        assert read_all(stream) == b"ab\nabcde\nabcde\n\nabcd"
        stream.close()
    conf.unset(LINE_GUARD_LIMIT)  # no limit: plain gzip
    assert read_all(codec.createInputStream(jvm.java.io.ByteArrayInputStream(data))) \
        == gzip.decompress(data)


def test_crlf_lines_read_as_lf_lines(spark, tmp_path):
    lines = [_purchase(1), '{"events": []}', "  ", _purchase(2)]
    lf, crlf = tmp_path / "lf.json", tmp_path / "crlf.json"
    lf.write_text("\n".join(lines) + "\n", newline="")
    crlf.write_text("\r\n".join(lines) + "\r\n", newline="")
    crlf_gz = tmp_path / "crlf.json.gz"
    crlf_gz.write_bytes(gzip.compress(crlf.read_bytes()))
    limit = LineLimit(MIB, guarded=True)
    read = {p.name: [(r["value"], r["quarantine_reason"], r["line_digest"]) for r in
                     parse_batches(read_lines(spark, [str(p)], limit=limit), MIB).collect()]
            for p in (lf, crlf, crlf_gz)}
    assert read["lf.json"] == read["crlf.json"] == read["crlf.json.gz"]
    assert [v for v, _, _ in read["lf.json"]] == [lines[0], lines[1], lines[3]]
    assert all(reason is None for _, reason, _ in read["lf.json"])


# ----- quarantine rows kept from the conversion pass ------------------------------------------
def test_bounded_collect_keeps_strings_within_its_bounds_across_partitions(spark):
    """The job's aggregate returns every string while within both bounds, null past either,
    whatever the partitions (each buffer is merged with the others')."""
    jvm = spark.sparkContext._jvm
    jvm.backfill.spark.BoundedCollect.register(spark._jsparkSession, "bounded_collect_test", 5, 40)
    ids = spark.range(0, 1000, 1, 7)

    def collect(condition: str, text: str = "cast(id as string)"):
        return ids.agg(F.call_function("bounded_collect_test",
                                       F.when(F.expr(condition), F.expr(text)))).first()[0]

    assert sorted(collect("id % 200 = 3").split("\n")) == ["203", "3", "403", "603", "803"]
    assert collect("id % 200 = 3 or id = 1") is None  # six strings
    assert collect("id < 0") == ""
    assert collect("id in (1, 2)", "repeat('é', 10)") == "é" * 10 + "\n" + "é" * 10  # 40 bytes
    assert collect("id in (1, 2, 3)", "repeat('é', 10)") is None  # 60 bytes


def test_kept_quarantine_rows_are_the_rows_of_the_lines(spark, tmp_path):
    """The rows kept from the pass equal ``quarantine_rows`` of the same lines."""
    path = tmp_path / "in.json"
    path.write_text("\n".join([batch([commerce()]), *MALFORMED]) + "\n", encoding="utf-8")
    parsed = parse_batches(read_lines(spark, [str(path)]))
    for keep_raw in (False, True):
        kept = parsed.agg(kept_quarantine_rows(spark, "r-1", keep_raw)).first()[0]
        rebuilt = quarantine_from_kept(spark, kept)
        assert rebuilt.schema.simpleString() == quarantine_rows(parsed, "r-1", keep_raw) \
            .schema.simpleString()
        assert sorted(rebuilt.collect()) == sorted(quarantine_rows(parsed, "r-1", keep_raw)
                                                   .collect())
        assert rebuilt.count() == len(MALFORMED)
