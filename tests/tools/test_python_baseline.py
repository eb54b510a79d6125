"""The benchmark's plain-Python comparison script: it must apply the SPEC's rules, or the
comparison would be meaningless. It is checked against the generator's manifest (what the job
counts on the same dump) and against the SPEC's worked examples. No Spark here."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from jobs.tools import python_baseline as pb
from jobs.tools.generate_dump import generate_dump
from tests.helpers import NOW, T_MS, batch, commerce


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def run(tmp_path: Path, *extra: str) -> tuple[dict, list[dict]]:
    out = tmp_path / "payloads.jsonl"
    settings = pb.parse_args(["--input", str(tmp_path / "dump"), "--out", str(out), *extra])
    counts = pb.run(settings)
    return counts, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("profile", ["extended", "mparticle"])
@pytest.mark.parametrize("dialect", ["capi", "offline_conversions"])
def test_counts_match_the_generators_manifest(tmp_path: Path, dialect: str, profile: str) -> None:
    manifest = generate_dump(tmp_path / "dump", 3000, seed=3, files=3, gzip=1, workers=1)
    counts, payloads = run(tmp_path, "--profile", profile, "--dialect", dialect,
                           "--reference-time", str(manifest.reference_time))
    expected = manifest.expected if profile == "extended" else manifest.mparticle["expected"]
    convertible = (manifest.convertible if profile == "extended"
                   else manifest.mparticle["convertible"])
    assert counts["input_lines"] == manifest.input_lines
    assert counts["batches"] == manifest.batches
    assert counts["events"] == manifest.events
    assert counts["payloads"] == convertible == len(payloads)
    skipped = {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("skipped.")}
    assert skipped == {k: v for k, v in expected.items() if v}
    quarantined = {k.split(".", 1)[1]: v for k, v in counts.items()
                   if k.startswith("quarantined.")}
    assert quarantined == {k: v for k, v in manifest.bad_lines.items() if v}


def write_dump(tmp_path: Path, lines: list[str]) -> None:
    folder = tmp_path / "dump"
    folder.mkdir()
    with gzip.open(folder / "part-0.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def test_spec_examples_of_the_mapping(tmp_path: Path) -> None:
    event = commerce("purchase", source_message_id="m-1", total=None, currency=None,
                     products=[{"id": " SKU-1 ", "price": "6.25", "quantity": "2"}])
    line = batch([event], identities={"email": "  Foo.Bar@Example.COM "},
                 attributes={"$City": "Menlo Park", "$country": "U.S.A.",
                             "$mobile": "+1 (650) 555-0100", "$zip": "94105-1234",
                             "$state": "California"})
    write_dump(tmp_path, [line])
    counts, [element] = run(tmp_path, "--reference-time", str(NOW))
    assert counts["payloads"] == 1
    assert element["event_time"] == T_MS // 1000
    assert element["event_id"] == "m-1"
    user = element["user_data"]
    assert user["em"] == ["00a9fee7604744049b5f777d65021e214480af944b16c1580893c5c6eed2d45a"]
    assert user["ct"] == "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685"
    assert user["country"] == sha("us")
    assert user["ph"] == [sha("16505550100")]
    assert user["zp"] == sha("94105")
    assert user["st"] == sha("ca")
    assert element["custom_data"]["value"] == 6.25  # sum_price ignores the quantity
    assert element["custom_data"]["currency"] == "USD"
    assert element["custom_data"]["contents"] == [
        {"id": "SKU-1", "quantity": 2, "item_price": 6.25}]
    assert element["custom_data"]["content_type"] == "product"


@pytest.mark.parametrize("raw,digits", [
    ("+1 (650) 555-0100", "16505550100"), ("0044 20 7946 0000", "442079460000"),
    ("555-0100", "5550100"), ("12345", None), ("555 01x0", None),
])
def test_phone_rule_of_spec_9(raw: str, digits: str | None) -> None:
    assert pb.phone_key(raw) == (sha(digits) if digits else None)


@pytest.mark.parametrize("raw,us,expected", [
    ("94105-1234", True, "94105"), ("SW1A 1AA", False, "sw1a1aa"), ("00-950", False, "00950"),
    ("1", True, None),
])
def test_zip_rule_of_spec_9(raw: str, us: bool, expected: str | None) -> None:
    assert pb.zip_key(raw, us) == (sha(expected) if expected else None)


@pytest.mark.parametrize("text,value", [
    (" 1.5E+2 ", "150"), ("12.50", "12.5"), ("", None), ("NaN", None), (".5", None),
    ("1e99999", None),
])
def test_numbers_of_spec_8(text: str, value: str | None) -> None:
    number = pb.to_number(text)
    assert (number is None) if value is None else (number == pb.Decimal(value))
