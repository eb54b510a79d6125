"""Settings: validated before Spark starts, each error naming its setting."""

from __future__ import annotations

import pytest

from jobs.backfill import main
from jobs.config import ConfigError, JobConfig, load_config


def test_defaults_follow_the_spec():
    c = load_config(None, {"input": ["x"], "dry_run": True})
    assert c.dialect == "capi" and c.mapping.max_event_age_days == 62
    assert c.mapping.ldu == "never" and c.mapping.email_identity_type == "email"
    assert c.mapping.profile == "extended" and c.mapping.external_id_type == "customer_id"
    assert c.chunk_size == 1000
    assert c.event_names["checkout"] == "InitiateCheckout"
    legacy = load_config(None, {"dialect": "offline_conversions", "dry_run": True})
    assert legacy.chunk_size == 2000 and legacy.event_names["checkout"] == "Checkout"


@pytest.mark.parametrize("overrides,setting", [
    ({"dialect": "graph"}, "dialect"),
    ({"mapping.ldu": "sometimes"}, "mapping.ldu"),
    ({"upload.chunk_size": 1001}, "upload.chunk_size"),
    ({"upload.chunk_size": 0}, "upload.chunk_size"),
    ({"upload.max_in_flight": "many"}, "upload.max_in_flight"),
    ({"mapping.default_currency": "dollars"}, "mapping.default_currency"),
    ({"upload.api_version": "24"}, "upload.api_version"),
    ({"from_date": "2026/01/01"}, "from_date"),
    ({"upload.nonsense": 1}, "upload.nonsense"),
    ({"upload.base_url": "http://h/?access_token=x"}, "upload.base_url"),
    ({"mapping.profile": "meta"}, "mapping.profile"),
    ({"mapping.profile": "Extended"}, "mapping.profile"),
    ({"mapping.external_id_type": " "}, "mapping.external_id_type"),
])
def test_wrong_settings_name_the_setting(overrides, setting):
    with pytest.raises(ConfigError, match=f"'{setting}'"):
        load_config(None, {"dry_run": True, **overrides})


def test_upload_needs_a_set_id():
    with pytest.raises(ConfigError, match=r"upload\.set_id"):
        load_config(None, {"input": ["x"]})
    assert load_config(None, {"input": ["x"], "upload.set_id": "42"}).upload.set_id == "42"


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dialect: offline_conversions\nupload:\n  chunk_size: 500\n  set_id: '7'\n")
    c = load_config(path, {"upload.chunk_size": 200})
    assert c.dialect == "offline_conversions" and c.chunk_size == 200


def test_digest_has_no_secret_and_ignores_run_only_settings():
    a = load_config(None, {"dry_run": True, "reference_time": 5})
    b = load_config(None, {"dry_run": True, "reference_time": 6})
    assert a.digest() == b.digest()
    assert isinstance(a, JobConfig)


def test_cli_fails_before_spark_with_a_named_setting(capsys, monkeypatch):
    monkeypatch.delenv("FB_ACCESS_TOKEN", raising=False)
    assert main(["--input", "x", "--dialect", "capi", "--chunk-size", "5000", "--dry-run"]) == 2
    assert "upload.chunk_size" in capsys.readouterr().err
    assert main(["--input", "x", "--set-id", "1"]) == 2
    assert "FB_ACCESS_TOKEN" in capsys.readouterr().err


def test_table_locations_under_an_object_store_uri():
    c = load_config(None, {"dry_run": True, "output_dir": "s3a://bucket/backfill/",
                           "tables.runs": "backfill.runs"})
    assert c.table("payloads") == "s3a://bucket/backfill/payloads"
    assert c.staging_dir == "s3a://bucket/backfill/_staging"
    assert c.table("runs") == "backfill.runs"
