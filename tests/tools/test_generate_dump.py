"""The dump generator: determinism, layout, dialects, edge cases, manifest, bundled samples.

No Spark here: the files are checked with the standard library. Whether the job's counts equal
the manifest is the end-to-end test's business.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shlex
from pathlib import Path

import pytest

from jobs.tools.generate_dump import (
    BAD_LINE_REASONS,
    DAY,
    EVENT_DEFECTS,
    MANIFEST_NAME,
    MAX_EVENT_AGE_DAYS,
    REFERENCE_TIME,
    SKIP_REASONS,
    VERIFICATION_NAME,
    Manifest,
    _Params,
    _Renderer,
    generate_dump,
    main,
)
from tests.helpers import PUBLISHED_SAMPLES, SAMPLES

NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")
#: Every category at once, on a dump that still takes well under a second.
RICH = {"events": 1500, "seed": 3, "files": 3, "gzip": 1, "bad_line_rate": 0.05,
        "edge_case_rate": 0.03, "duplicate_batch_rate": 0.05}


def data_files(root: Path) -> list[Path]:
    """The files the job reads: not hidden, not verification objects, not empty."""
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not p.name.startswith((".", "_"))
        and not p.name.startswith("mParticle_Bucket_Verification_") and p.stat().st_size > 0
    )


def content(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def lines_of(root: Path) -> list[str]:
    return [line for p in data_files(root) for line in content(p).decode().split("\n")[:-1]]


def tree(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes (gzip files by their content: zlib builds may differ)."""
    return {p.relative_to(root).as_posix(): content(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rich(tmp_path_factory) -> tuple[Path, Manifest]:
    out = tmp_path_factory.mktemp("rich") / "dump"
    return out, generate_dump(out, **RICH)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = generate_dump(tmp_path / "a", 400, seed=5, files=2, gzip=1)
    b = generate_dump(tmp_path / "b", 400, seed=5, files=2, gzip=1)
    c = generate_dump(tmp_path / "c", 400, seed=6, files=2, gzip=1)
    assert a == b and a != c
    for p in (tmp_path / "a").rglob("*"):  # raw bytes too: gzip has no name and mtime 0
        if p.is_file():
            assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()
    assert tree(tmp_path / "a") != tree(tmp_path / "c")
    assert lines_of(tmp_path / "a") != lines_of(tmp_path / "c")


@pytest.mark.slow
def test_bytes_do_not_depend_on_worker_processes(tmp_path):
    one = generate_dump(tmp_path / "one", 300, seed=8, files=2, gzip=1, workers=1)
    two = generate_dump(tmp_path / "two", 300, seed=8, files=2, gzip=1, workers=2)
    assert one == two
    assert tree(tmp_path / "one") == tree(tmp_path / "two")


def test_manifest_arithmetic(rich):
    out, m = rich
    assert m.input_lines == m.batches + sum(m.bad_lines.values())
    assert m.events == sum(m.expected.values()) + m.convertible
    assert m.convertible == sum(m.convertible_by_action.values())
    assert set(m.expected) == set(SKIP_REASONS) and set(m.bad_lines) == set(BAD_LINE_REASONS)
    assert m.reference_time == REFERENCE_TIME
    assert Manifest.load(out) == m
    assert sum(f["lines"] for f in m.files) == m.input_lines
    assert sum(f["events"] for f in m.files) == m.events
    assert m.events >= RICH["events"]  # the originals hold exactly N; copies add theirs
    # profile mparticle: the events only SPEC §9's keys match are no_match_keys instead
    mp = m.mparticle
    assert set(mp["expected"]) == set(SKIP_REASONS)
    assert m.events == sum(mp["expected"].values()) + mp["convertible"]
    assert mp["expected"]["no_match_keys"] == m.expected["no_match_keys"] + m.gained_match_key
    assert mp["convertible"] < m.convertible and m.gained_match_key > 0
    assert {k: v for k, v in mp["expected"].items() if k not in ("no_match_keys", "duplicate")} \
        == {k: v for k, v in m.expected.items() if k not in ("no_match_keys", "duplicate")}


def test_manifest_counts_match_the_files(rich):
    """Lines, malformed lines (by reason), batches and events, recounted with ``json``."""
    out, m = rich
    lines = lines_of(out)
    blank = [x for x in lines if not x.strip()]
    solid = [x for x in lines if x.strip()]
    bad = dict.fromkeys(BAD_LINE_REASONS, 0)
    batches = events = null_events = 0
    for line in solid:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad["invalid_json"] += 1
            continue
        if not isinstance(obj, dict):
            bad["not_object"] += 1
        elif obj.get("events") is not None and not isinstance(obj["events"], list):
            bad["events_not_array"] += 1
        else:
            batches += 1
            events += len(obj.get("events") or [])
            null_events += "events" in obj and obj["events"] is None
    assert len(solid) == m.input_lines and len(blank) == m.whitespace_lines > 0
    assert bad == m.bad_lines and batches == m.batches and events == m.events
    assert null_events == m.events_null_batches > 0
    for f in m.files:
        assert hashlib.sha256(content(out / f["path"])).hexdigest() == f["content_sha256"]


def test_layout(rich, tmp_path):
    out, m = rich
    assert (out / VERIFICATION_NAME).read_text() == "{}"
    assert (out / MANIFEST_NAME).is_file()
    empty = [p for p in out.rglob("*.txt") if p.stat().st_size == 0]
    assert len(empty) == 1 and empty[0].relative_to(out).as_posix() in m.not_data
    files = data_files(out)
    assert len(files) == RICH["files"] == len(m.files)
    name = re.compile(r"^AcmeStores_\d{20}_\d{5}\.txt(\.gz)?$")
    for p in files:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.parent.name), p
        assert name.match(p.name), p.name
    gz = [p for p in files if p.name.endswith(".gz")]
    assert len(gz) == 1 and gz[0].read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(gz[0].read_bytes()).decode().count("\n") > 10
    flat = tmp_path / "flat"
    generate_dump(flat, 100, files=2, gzip=True, date_folders=False)
    assert all(p.parent == flat for p in flat.rglob("*"))
    assert sorted(p.name.endswith(".gz") for p in data_files(flat)) == [True, True]


def _batches(root: Path) -> list[dict]:
    out = []
    for line in lines_of(root):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("events", []), list | None):
            out.append(obj)
    return out


def events_of(batches: list[dict]) -> list[dict]:
    return [e for b in batches for e in b.get("events") or []]


def test_both_dialects_and_string_int64s_in_outbound(rich):
    out, m = rich
    batches = _batches(out)
    outbound = [b for b in batches if isinstance(b.get("user_identities"), list)
                or "batch_id" in b]
    inbound = [b for b in batches if b not in outbound]
    assert len(outbound) > 50 and len(inbound) > 50
    assert m.inbound_batches + m.outbound_batches == m.batches
    for b in outbound:
        for key in ("batch_id", "mpid", "timestamp_unixtime_ms"):
            assert isinstance(b[key], str) and NUMBER.match(b[key]), (key, b[key])
        for ident in b.get("user_identities") or []:
            assert isinstance(ident["timestamp_unixtime_ms"], str)
            assert set(ident) == {"identity_type", "identity", "timestamp_unixtime_ms",
                                  "created_this_batch"}
        for e in b.get("events") or []:
            assert isinstance(e["data"]["event_id"], str)
            ts = e["data"].get("timestamp_unixtime_ms")
            assert ts is None or isinstance(ts, str)
    keyed = [b for b in inbound if isinstance(b.get("user_identities"), dict)
             and b["user_identities"].get("email")]
    assert keyed and all(isinstance(b["mpid"], int) for b in keyed if "mpid" in b)
    assert any("customerid" in b["user_identities"] for b in keyed)
    assert any("customer_id" in b["user_identities"] for b in keyed)
    assert any(b["mpid"] < 0 for b in keyed if "mpid" in b)
    keys = {k for b in batches for k in (b.get("user_attributes") or {})}
    assert {"$FirstName", "$firstname", "$LASTNAME"} & keys and len(
        {k.lower() for k in keys if k.startswith("$")}) >= 7
    devices = [b.get("device_info") or {} for b in batches]
    assert any(d.get("ios_advertising_id") == "00000000-0000-0000-0000-000000000000"
               for d in devices)
    assert any(d.get("android_advertising_id") == "" for d in devices)
    # SPEC §9's sources: phone identities in both dialects, $Mobile, $State names, zips
    identity_types = {i["identity_type"] for b in outbound for i in b.get("user_identities") or []}
    assert {"mobile_number", "phone_number_2", "phone_number_3", "customer_id"} <= identity_types
    inbound_types = {t for b in inbound if isinstance(b.get("user_identities"), dict)
                     for t in b["user_identities"]}
    assert {"mobile_number", "phone_number_2", "phone_number_3", "customerid"} <= inbound_types
    attributes = [{k.lower(): v for k, v in (b.get("user_attributes") or {}).items()}
                  for b in batches]
    assert any("$mobile" in a for a in attributes)
    states = {a["$state"] for a in attributes if isinstance(a.get("$state"), str)}
    assert {"District of Columbia", "California"} <= states
    zips = {a["$zip"] for a in attributes if isinstance(a.get("$zip"), str | int)}
    assert {"94105-1234", "SW1A 1AA", "00-950", "9"} <= zips
    assert any(isinstance(z, int) for z in zips)  # a JSON number
    products = [p for e in events_of(batches) for p in
                (e["data"].get("product_action") or {}).get("products") or []]
    assert any(isinstance(p.get("name"), int) for p in products)
    assert any("value" in (e["data"].get("custom_attributes") or {}) for e in events_of(batches))
    events = [e for b in batches for e in b.get("events") or []]
    types = {e["event_type"] for e in events}
    assert {"commerce_event", "screen_view", "custom_event", "session_start"} <= types
    actions = {e["data"]["product_action"]["action"] for e in events
               if e["data"].get("product_action")}
    assert {"purchase", "add_to_cart", "view_detail", "checkout", "add_to_wishlist", "refund",
            "remove_from_cart"} <= actions
    assert any("promotion_action" in e["data"] for e in events)
    assert any("product_impressions" in e["data"] for e in events)


def test_every_category_present_when_rates_are_positive(rich):
    _, m = rich
    assert all(n > 0 for n in m.expected.values()), m.expected
    assert all(n > 0 for n in m.bad_lines.values()), m.bad_lines
    assert m.duplicate_batches > 0 and m.convertible > 0
    assert set(m.convertible_by_action) == {"purchase", "add_to_cart", "view_detail",
                                            "checkout", "add_to_wishlist"}


def test_small_dump_still_gets_each_edge_case(tmp_path):
    m = generate_dump(tmp_path / "d", 300, files=2, bad_line_rate=0.01,
                      duplicate_batch_rate=0.01)
    assert all(m.expected[r] > 0 for r in (*EVENT_DEFECTS, "no_match_keys", "duplicate"))
    assert m.gained_match_key > 0
    assert sum(m.bad_lines.values()) >= 2 and m.whitespace_lines >= 2


def test_zero_rates_give_no_edge_cases(tmp_path):
    m = generate_dump(tmp_path / "d", 600, bad_line_rate=0, edge_case_rate=0,
                      duplicate_batch_rate=0)
    assert all(m.expected[r] == 0 for r in (*EVENT_DEFECTS, "no_match_keys", "duplicate"))
    assert m.gained_match_key == 0 and m.mparticle["expected"] == m.expected
    assert sum(m.bad_lines.values()) == m.whitespace_lines == m.duplicate_batches == 0
    assert m.convertible > 0 and m.input_lines == m.batches
    assert m.events == 600  # no copies: exactly the events asked for


@pytest.mark.parametrize("defect", EVENT_DEFECTS)
def test_each_defect_is_built_on_purpose(defect):
    """The property that makes the expected reason certain holds on every built event."""
    renderer = _Renderer(_Params(seed=1, events=100, reference_time=REFERENCE_TIME, files=1,
                                 gzip_files=frozenset(), date_folders=True, bad_line_rate=0,
                                 edge_case_rate=0, duplicate_batch_rate=0, app_name="A",
                                 compresslevel=1))
    renderer.rng.seed(42)
    in_window = (REFERENCE_TIME - 30 * DAY) * 1000
    for i in range(200):
        text, action = renderer._mapped(in_window, outbound=i % 2 == 1, defect=defect)
        data = json.loads(text)["data"]
        pa = data["product_action"]
        ts = data.get("timestamp_unixtime_ms")
        amounts = [pa.get("total_amount"), *(p.get("price") for p in pa["products"])]
        bad_amount = [a for a in amounts if isinstance(a, str) and not NUMBER.match(a.strip())]
        currency = data.get("currency_code")
        if defect == "missing_timestamp":
            assert ts is None
            continue
        seconds = int(ts) // 1000
        if defect == "future_time":
            assert seconds > REFERENCE_TIME + 60
        elif defect == "too_old":
            assert seconds < REFERENCE_TIME - MAX_EVENT_AGE_DAYS * DAY
        else:
            assert seconds == in_window // 1000
        assert (len(bad_amount) == 1) == (defect == "invalid_amount")
        if defect == "invalid_currency":
            assert not re.fullmatch(r"[A-Za-z]{3}", currency.strip())
        else:
            assert currency is None or re.fullmatch(r"[A-Za-z]{3}", currency)
        if defect == "purchase_without_value":
            assert action == "purchase"
            total = pa.get("total_amount")
            prices = [p.get("price") for p in pa["products"] if p.get("price") is not None]
            assert (total is None and not prices) or float(total) == 0


def test_cli_and_arguments(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--out", str(out), "--events", "200", "--files", "2", "--gzip",
                 "--no-date-folders", "--seed", "9"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}")
    m = Manifest.load(out)
    assert m.settings["gzip_files"] == [0, 1] and m.settings["date_folders"] is False
    with pytest.raises(FileExistsError):
        generate_dump(out, 10)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):  # never wipes a folder that is not a dump
        generate_dump(tmp_path / "other", 10, overwrite=True)
    generate_dump(out, 10, overwrite=True)
    assert Manifest.load(out).settings["events"] == 10
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x"), "--events", "5", "--bad-line-rate", "2"])


# ----- the bundled samples --------------------------------------------------------------------
def _documented_command() -> list[str]:
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    found = [line.strip() for line in readme.splitlines()
             if line.strip().startswith(".venv/bin/python -m jobs.tools.generate_dump")]
    assert len(found) == 1, found
    return shlex.split(found[0])[3:]


def test_committed_sample_matches_the_documented_command(tmp_path):
    args = _documented_command()
    out = tmp_path / "sample_dump"
    args[args.index("--out") + 1] = str(out)
    assert main([a for a in args if a != "--overwrite"]) == 0
    committed = SAMPLES / "sample_dump"
    assert Manifest.load(out) == Manifest.load(committed)
    assert tree(out) == tree(committed)
    m = Manifest.load(committed)
    assert 250 <= m.batches <= 400 and 800 <= m.events <= 1100
    assert m.inbound_batches > 0 and m.outbound_batches > 0
    assert sum(f["gzip"] for f in m.files) == 2 and len(m.files) == 4
    assert all(n >= 3 for n in m.bad_lines.values()) and m.duplicate_batches > 0


def test_published_batches_are_bundled_unchanged():
    bundled = SAMPLES / "mparticle_published" / "batches.ndjson"
    assert len(bundled.read_text(encoding="utf-8").splitlines()) == 11
    assert bundled.read_bytes() == (PUBLISHED_SAMPLES / "batches.ndjson").read_bytes()
