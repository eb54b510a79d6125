"""Reading the secrets: the access token (an environment variable, default ``FB_ACCESS_TOKEN``,
or a secret file such as a mounted secret scope) and, optionally, the app secret (default
``FB_APP_SECRET``, or a file) from which the client derives ``appsecret_proof``. Neither is ever
logged, stored or put in a URL."""

from __future__ import annotations

import os
from pathlib import Path

from jobs.config import ConfigError, UploadConfig


def _read_file(setting: str, value: str) -> str:
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"setting '{setting}': no file at {path}")
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        raise ConfigError(f"setting '{setting}': {path} is empty")
    return secret


def read_token(upload: UploadConfig) -> str:
    """The access token, or ConfigError naming where it was looked for (never its value)."""
    if upload.token_file:
        return _read_file("upload.token_file", upload.token_file)
    token = os.environ.get(upload.token_env, "").strip()
    if not token:
        raise ConfigError(
            f"setting 'upload.token_env': the environment variable {upload.token_env} holding "
            "the access token is not set (or use --dry-run)"
        )
    return token


def read_app_secret(upload: UploadConfig) -> str | None:
    """The app secret when one is configured: ``upload.app_secret_file`` (which must exist and
    not be empty), else the environment variable ``upload.app_secret_env`` when set; None when
    neither is, and then no ``appsecret_proof`` is sent."""
    if upload.app_secret_file:
        return _read_file("upload.app_secret_file", upload.app_secret_file)
    if not upload.app_secret_env:
        return None
    return os.environ.get(upload.app_secret_env, "").strip() or None
