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


@pytest.mark.parametrize("overrides,setting", [
    ({"from_date": "2026-13-45"}, "from_date"),
    ({"to_date": "2026-02-30"}, "to_date"),
    ({"upload.backoff_base_seconds": -1}, "upload.backoff_base_seconds"),
    ({"upload.backoff_max_seconds": -0.5}, "upload.backoff_max_seconds"),
    ({"upload.throttle_backoff_seconds": -3}, "upload.throttle_backoff_seconds"),
    ({"upload.timeout_seconds": 0}, "upload.timeout_seconds"),
    ({"upload.max_attempts": 0}, "upload.max_attempts"),
    ({"upload.rate_limit_per_second": -2}, "upload.rate_limit_per_second"),
    ({"upload.partitions": 0}, "upload.partitions"),
    ({"mapping.max_event_age_days": -1}, "mapping.max_event_age_days"),
    ({"date_folder_lookback_days": -1}, "date_folder_lookback_days"),
    ({"max_line_bytes": 0}, "max_line_bytes"),
    ({"upload.set_id": "12ab34"}, "upload.set_id"),
    ({"upload.set_id": "act_123"}, "upload.set_id"),
    ({"upload.base_url": "http://graph.example.com"}, "upload.base_url"),
    ({"upload.base_url": "http://10.0.0.5:8080"}, "upload.base_url"),
])
def test_settings_that_would_fail_later_fail_now(overrides, setting):
    with pytest.raises(ConfigError, match=f"'{setting}'"):
        load_config(None, {"dry_run": True, **overrides})


def test_set_ids_are_digits_also_in_a_dry_run():
    assert load_config(None, {"dry_run": True, "upload.set_id": "1234567890"}).upload.set_id
    with pytest.raises(ConfigError, match=r"'upload\.set_id'.*digits"):
        load_config(None, {"dry_run": True, "upload.set_id": "x1"})


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:80",
                                 "https://graph.facebook.com", "https://10.0.0.5"])
def test_plain_http_only_to_loopback(url):
    assert load_config(None, {"dry_run": True, "upload.base_url": url}).upload.base_url == url


def test_plain_http_elsewhere_needs_an_explicit_setting():
    c = load_config(None, {"dry_run": True, "upload.base_url": "http://proxy.internal:8080",
                           "upload.allow_insecure_http": True})
    assert c.upload.allow_insecure_http
    with pytest.raises(ConfigError, match="allow_insecure_http"):
        load_config(None, {"dry_run": True, "upload.base_url": "http://proxy.internal:8080"})


def test_spark_conf_keys_keep_their_dots():
    from jobs.config import parse_override

    key, value = parse_override("spark.conf.spark.driver.memory=6g")
    c = load_config(None, {"dry_run": True, key: value})
    assert dict(c.spark.conf) == {"spark.driver.memory": "6g"}
    path_conf = load_config(None, {"dry_run": True, "spark.conf.spark.sql.shuffle.partitions": 8,
                                   "spark.master": "local[2]"})
    assert dict(path_conf.spark.conf) == {"spark.sql.shuffle.partitions": "8"}
    assert path_conf.spark.master == "local[2]"


def test_line_limit_default():
    assert load_config(None, {"dry_run": True}).max_line_bytes == 64 * 1024 * 1024
