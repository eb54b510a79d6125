"""Reading the access token and the app secret from the environment or a secret file."""

from __future__ import annotations

import pytest

from jobs.config import ConfigError, UploadConfig
from jobs.credentials import read_app_secret, read_token


def test_token_from_env_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", " tok-1 \n")
    assert read_token(UploadConfig(token_env="MY_TOKEN")) == "tok-1"
    path = tmp_path / "token"
    path.write_text("tok-2\n")
    assert read_token(UploadConfig(token_env="MY_TOKEN", token_file=str(path))) == "tok-2"
    monkeypatch.delenv("MY_TOKEN")
    with pytest.raises(ConfigError, match="MY_TOKEN"):
        read_token(UploadConfig(token_env="MY_TOKEN"))


def test_app_secret_is_optional(tmp_path, monkeypatch):
    monkeypatch.delenv("FB_APP_SECRET", raising=False)
    assert read_app_secret(UploadConfig()) is None
    monkeypatch.setenv("FB_APP_SECRET", "s3cret\n")
    assert read_app_secret(UploadConfig()) == "s3cret"
    monkeypatch.setenv("OTHER_SECRET", "s4")
    assert read_app_secret(UploadConfig(app_secret_env="OTHER_SECRET")) == "s4"
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    assert read_app_secret(UploadConfig(app_secret_file=str(path))) == "from-file"


def test_a_configured_secret_file_must_exist_and_hold_a_secret(tmp_path):
    with pytest.raises(ConfigError, match=r"upload\.app_secret_file") as info:
        read_app_secret(UploadConfig(app_secret_file=str(tmp_path / "missing")))
    assert "missing" in str(info.value)
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        read_app_secret(UploadConfig(app_secret_file=str(empty)))
