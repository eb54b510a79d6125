"""A local S3 API for tests and demos: moto's standalone server on 127.0.0.1.

``LocalS3().start()`` runs ``moto.server`` in this process (threaded); ``env()`` gives the
standard variables the Python side (botocore, s3fs) reads, ``s3a_conf()`` the Hadoop S3A
settings for Spark (``spark.hadoop.fs.s3a.*``). Credentials are moto's dummy values.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

REGION = "us-east-1"
#: moto accepts any key; these are not secrets.
ACCESS_KEY = "local-s3-access-key"
SECRET_KEY = "local-s3-secret-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalS3:
    """moto's S3 server on 127.0.0.1 (``with LocalS3().start() as s3: ...``)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> LocalS3:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalS3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The AWS variables for a process that talks to this server."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION}

    def s3a_conf(self) -> dict[str, str]:
        """Hadoop S3A settings (credentials come from the AWS_* variables of ``env()``)."""
        return {
            "spark.hadoop.fs.s3a.endpoint": self.url,
            "spark.hadoop.fs.s3a.endpoint.region": REGION,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
            "spark.hadoop.fs.s3a.aws.credentials.provider":
                "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
        }

    def filesystem(self) -> Any:
        import s3fs  # type: ignore[import-untyped]

        return s3fs.S3FileSystem(key=ACCESS_KEY, secret=SECRET_KEY,
                                 client_kwargs={"endpoint_url": self.url},
                                 use_listings_cache=False, skip_instance_cache=True)

    def create_bucket(self, name: str) -> str:
        self.filesystem().mkdir(name)
        return f"s3a://{name}"

    def upload(self, folder: str | os.PathLike[str], uri: str) -> int:
        """Copy a local folder's files (recursively) under ``uri``; returns the file count."""
        fs = self.filesystem()
        root = Path(folder)
        target = uri.split("://", 1)[-1].rstrip("/")
        count = 0
        for path in sorted(root.rglob("*")):
            if path.is_file():
                fs.pipe_file(f"{target}/{path.relative_to(root).as_posix()}", path.read_bytes())
                count += 1
        return count
