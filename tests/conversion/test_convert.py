"""The conversion stage on dumps that hold every case: the counts reconcile (SPEC §7)."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from jobs import ledger
from jobs.config import load_config
from jobs.conversion import convert as convert_module
from jobs.pipeline import run_backfill
from jobs.tools.generate_dump import Manifest
from tests.helpers import NOW, SAMPLES, batch, commerce


@pytest.fixture(scope="module")
def sample_run(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("convert")
    config = load_config(None, {"input": [str(SAMPLES / "sample_dump")], "output_dir": str(out),
                                "dry_run": True, "reference_time": NOW})
    return config, run_backfill(spark, config, None)


def test_sample_dump_counts_match_its_manifest_and_reconcile(sample_run):
    _, report = sample_run
    m = Manifest.load(SAMPLES / "sample_dump")
    c = report.counts
    assert report.status == "succeeded" and c["reconciles"] == 1
    assert c["input_lines"] == m.input_lines == c["batches"] + c["quarantined"]
    assert c["batches"] == m.batches
    assert {k.split(".", 1)[1]: v for k, v in c.items() if k.startswith("quarantined.")} \
        == {k: v for k, v in m.bad_lines.items() if v}
    assert c["events"] == m.events == c["candidate_events"]
    assert c["candidate_events"] == c["payloads"] + c["skipped"]
    assert c["payloads"] == m.convertible
    assert {k.split(".", 1)[1]: v for k, v in c.items() if k.startswith("skipped.")} \
        == {k: v for k, v in m.expected.items() if v}
    assert set(m.expected) == {
        "non_commerce", "no_product_action", "unmapped_action", "missing_timestamp",
        "future_time", "too_old", "invalid_amount", "invalid_currency",
        "purchase_without_value", "no_match_keys", "duplicate"}
    assert all(m.expected.values())  # the sample holds every case
    assert c["gained_match_key"] == m.gained_match_key > 0
    assert (f"events with a match key only from phone, state, zip or external id (SPEC §9; "
            f"no_match_keys under profile mparticle): {m.gained_match_key}") in report.text()


def test_profile_mparticle_counts_the_events_only_spec_9_keys_match_as_no_match_keys(
        spark, tmp_path):
    config = load_config(None, {"input": [str(SAMPLES / "sample_dump")],
                                "output_dir": str(tmp_path), "dry_run": True,
                                "reference_time": NOW, "mapping.profile": "mparticle"})
    report = run_backfill(spark, config, None)
    m = Manifest.load(SAMPLES / "sample_dump")
    c = report.counts
    assert c["reconciles"] == 1 and c["gained_match_key"] == 0
    assert c["payloads"] == m.mparticle["convertible"] < m.convertible
    assert {k.split(".", 1)[1]: v for k, v in c.items() if k.startswith("skipped.")} \
        == {k: v for k, v in m.mparticle["expected"].items() if v}
    assert c["skipped.no_match_keys"] == m.expected["no_match_keys"] + m.gained_match_key


def test_payloads_and_quarantine_tables(spark, sample_run):
    config, report = sample_run
    payloads = ledger.read_table(spark, config.table("payloads"))
    assert payloads.count() == report.counts["payloads"]
    assert payloads.select("event_key").distinct().count() == report.counts["payloads"]
    assert set(payloads.columns) >= {"run_id", "event_key", "event_id", "event_name",
                                     "event_time", "dialect", "payload"}
    quarantine = ledger.read_table(spark, config.table("quarantine")).collect()
    assert len(quarantine) == report.counts["quarantined"]
    assert all(r["raw_line"] is None and len(r["line_digest"]) == 64 for r in quarantine)
    assert all(r["source_file"].endswith((".txt", ".txt.gz")) for r in quarantine)
    # the extended profile's keys and rich contents are there (SPEC §9); no standard-named
    # custom attribute is (SPEC §8: the sample's text "value" would make Meta refuse a request)
    sent = [json.loads(r["payload"]) for r in payloads.select("payload").collect()]
    for key in ("em", "ph", "st", "zp", "external_id"):
        assert any(key in p["user_data"] for p in sent), key
    assert all(type(p["user_data"].get("ph", [])) is list for p in sent)
    assert any("title" in c for p in sent for c in p.get("custom_data", {}).get("contents", []))
    custom = [p["custom_data"] for p in sent if "custom_data" in p]
    assert all(type(cd.get("value", 1.0)) is float for cd in custom)
    assert all(cd.get("content_type", "product") == "product" for cd in custom)


def test_raw_lines_are_kept_only_when_asked(spark, tmp_path):
    config = load_config(None, {"input": [str(SAMPLES / "sample_dump")],
                                "output_dir": str(tmp_path), "dry_run": True,
                                "reference_time": NOW, "quarantine_keep_raw": True})
    run_backfill(spark, config, None)
    rows = ledger.read_table(spark, config.table("quarantine")).collect()
    assert rows and all(r["raw_line"] for r in rows)


def _count_calls(monkeypatch, name: str) -> list[int]:
    """A list that grows by one at each call of ``jobs.conversion.convert.<name>``."""
    calls: list[int] = []
    real = getattr(convert_module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(convert_module, name, counted)
    return calls


def _quarantine_of_a_run(spark, monkeypatch, out, keep_raw):
    """The quarantine rows of a dry run of the sample dump (without the run id), and how many
    times the files with malformed lines were read again for them."""
    rereads = _count_calls(monkeypatch, "_write_quarantine")
    config = load_config(None, {"input": [str(SAMPLES / "sample_dump")], "output_dir": str(out),
                                "dry_run": True, "reference_time": NOW, "progress": "off",
                                "quarantine_keep_raw": keep_raw})
    report = run_backfill(spark, config, None)
    rows = ledger.read_table(spark, config.table("quarantine")).drop("run_id").collect()
    assert len(rows) == report.counts["quarantined"] > 0
    return sorted(rows), len(rereads)


@pytest.mark.parametrize("keep_raw", [False, True])
def test_quarantine_rows_come_from_the_pass_while_few_else_from_a_reread(
        spark, monkeypatch, tmp_path, keep_raw):
    """A few malformed lines cost no second read of their files; past the bound they are read
    again, and either way the quarantine table holds the same rows."""
    from jobs.conversion import read as read_module

    kept, kept_rereads = _quarantine_of_a_run(spark, monkeypatch, tmp_path / "kept", keep_raw)
    monkeypatch.setattr(read_module, "KEPT_QUARANTINE_ROWS", 1)
    reread, rereads = _quarantine_of_a_run(spark, monkeypatch, tmp_path / "reread", keep_raw)
    assert (kept_rereads, rereads) == (0, 1)
    assert kept == reread


def test_published_mparticle_batches_all_parse(spark, tmp_path):
    config = load_config(None, {"input": [str(SAMPLES / "mparticle_published")],
                                "output_dir": str(tmp_path), "dry_run": True,
                                "reference_time": NOW})
    report = run_backfill(spark, config, None)
    assert report.counts["input_lines"] == report.counts["batches"] == 11
    assert report.counts["quarantined"] == 0 and report.counts["reconciles"] == 1


# ----- lines too large for the executor's memory (issue 11) -----------------------------------
MIB = 1024 * 1024
LONG_LINE = '{"events": [], "pad": "' + "x" * (5 * MIB) + '"}'


def _purchase(n: int) -> str:
    return batch([commerce(source_message_id=f"m-{n}", event_id=str(1000 + n))])


def _run_counting_passes(spark, monkeypatch, dump, out, **settings):
    passes = _count_calls(monkeypatch, "_convert_pass")
    config = load_config(None, {"input": [str(dump)], "output_dir": str(out), "dry_run": True,
                                "reference_time": NOW, "progress": "off", **settings})
    report = run_backfill(spark, config, None)
    quarantine = ledger.read_table(spark, config.table("quarantine")).collect()
    sent = {json.loads(r["payload"])["event_id"] for r in
            ledger.read_table(spark, config.table("payloads")).collect()}
    return report, len(passes), quarantine, sent


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
def test_a_line_over_max_line_bytes_is_one_quarantine_row_and_the_rest_converts(
        spark, monkeypatch, tmp_path, compressed):
    dump = tmp_path / "dump"
    dump.mkdir()
    text = "\n".join([_purchase(1), LONG_LINE, _purchase(2)]) + "\n"
    if compressed:
        (dump / "big.json.gz").write_bytes(gzip.compress(text.encode(), compresslevel=1))
    else:
        (dump / "big.json").write_text(text)
        (dump / "tail.json").write_text(_purchase(3) + "\n" + LONG_LINE)  # no final \n
        (dump / "alone.json").write_text(LONG_LINE + "\r\n")
    report, passes, quarantine, sent = _run_counting_passes(
        spark, monkeypatch, dump, tmp_path / "out", max_line_bytes=MIB)
    c = report.counts
    too_large = 1 if compressed else 3
    assert report.status == "succeeded" and c["reconciles"] == 1, report.text()
    assert c["quarantined.line_too_large"] == c["quarantined"] == too_large
    assert c["input_lines"] == c["batches"] + c["quarantined"] == too_large + len(sent)
    assert sent == ({"m-1", "m-2"} if compressed else {"m-1", "m-2", "m-3"})
    assert c["payloads"] == len(sent)
    digest = hashlib.sha256(LONG_LINE.encode()[:MIB + 1]).hexdigest()
    assert [(r["reason"], r["line_length"], r["line_digest"], r["raw_line"])
            for r in quarantine] == [("line_too_large", MIB + 1, digest, None)] * too_large
    # gzip: cut as it is read; plain: Hadoop skips the line, the byte count sees it, the file
    # is read again through a cut gzip copy (one more pass)
    assert passes == (1 if compressed else 2)
    assert not list((tmp_path / "out").glob("_input/*")), "the copies are removed"


def test_lines_that_fit_cost_no_extra_pass(spark, monkeypatch, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    limit = 4096
    at_limit = '{"events": [], "pad": "' + "x" * (limit - 25) + '"}'
    over = '{"events": [], "pad": "' + "x" * (limit - 24) + '"}'
    assert (len(at_limit), len(over)) == (limit, limit + 1)
    lines = [_purchase(1), at_limit, over, "", _purchase(2)]
    (dump / "a.json").write_text("\r\n".join(lines) + "\r\n", newline="")
    (dump / "b.json").write_text("\n".join(lines))  # no final \n
    (dump / "c.json.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    report, passes, quarantine, sent = _run_counting_passes(
        spark, monkeypatch, dump, tmp_path / "out", max_line_bytes=limit)
    c = report.counts
    assert report.status == "succeeded" and c["reconciles"] == 1, report.text()
    assert passes == 1
    assert c["input_lines"] == 12 and c["batches"] == 9
    assert c["quarantined.line_too_large"] == 3
    assert {r["line_length"] for r in quarantine} == {limit + 1}
    assert sent == {"m-1", "m-2"}


def test_without_the_line_guard_lines_are_read_whole_and_the_report_says_so(
        spark, monkeypatch, tmp_path):
    monkeypatch.setattr(convert_module, "line_guard_available", lambda spark: False)
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "a.json").write_text("\n".join([_purchase(1), LONG_LINE, _purchase(2)]) + "\n")
    report, passes, quarantine, sent = _run_counting_passes(
        spark, monkeypatch, dump, tmp_path / "out", max_line_bytes=MIB)
    assert report.status == "succeeded" and report.counts["reconciles"] == 1, report.text()
    assert passes == 1 and sent == {"m-1", "m-2"}
    assert [(r["reason"], r["line_length"]) for r in quarantine] == [
        ("line_too_large", len(LONG_LINE))]  # read whole: its exact length
    assert convert_module.NO_LINE_GUARD in report.notes
