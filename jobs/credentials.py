"""Reading the access token: from an environment variable (default ``FB_ACCESS_TOKEN``) or a
secret file (a mounted secret scope). The token is never logged, stored or put in a URL."""

from __future__ import annotations

import os
from pathlib import Path

from jobs.config import ConfigError, UploadConfig


def read_token(upload: UploadConfig) -> str:
    """The access token, or ConfigError naming where it was looked for (never its value)."""
    if upload.token_file:
        path = Path(upload.token_file)
        if not path.is_file():
            raise ConfigError(f"setting 'upload.token_file': no file at {path}")
        token = path.read_text(encoding="utf-8").strip()
        if not token:
            raise ConfigError(f"setting 'upload.token_file': {path} is empty")
        return token
    token = os.environ.get(upload.token_env, "").strip()
    if not token:
        raise ConfigError(
            f"setting 'upload.token_env': the environment variable {upload.token_env} holding "
            "the access token is not set (or use --dry-run)"
        )
    return token
