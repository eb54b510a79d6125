"""The staging area: where upload tasks record each chunk outcome the moment it is known.

``upload.staging_dir`` is a local path (the default, ``<output_dir>/_staging``; also
``file://...``) or an object-store URI (``s3://`` or ``s3a://``, ``gs://``, ``abfss://``, any
scheme fsspec has a filesystem for). Layout, the same on every storage::

    <staging_dir>/<run_id>/part-<partition>-<attempt>.jsonl        local: appended, fsync'ed
    <staging_dir>/<run_id>/part-<partition>-<attempt>-<seq>.jsonl  object store: one object per
                                                                   chunk outcome
    <staging_dir>/_lease/                                          the run lease (jobs/lease.py)

Object stores have no append and no fsync, but a PUT is atomic (the object appears whole or not
at all), so each outcome is its own small object, written before the task moves on: the same
promise as the local fsync'ed line. The run id names a run (a crashed run's folder is one whose
run holds no live lease), the partition and Spark's task attempt id name a task attempt, so a
retried attempt finds what earlier attempts of its partition delivered.

Used by the upload tasks (``jobs/upload/executor.py``) and the driver's fold
(``jobs/upload/driver.py``) and by the run lease; nothing here imports Spark.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from jobs.config import ConfigError

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
#: URI schemes that name the same store under another client's name.
SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3"}
#: The extra that brings each scheme's filesystem (pip install 'mparticle-meta-backfill[s3]').
EXTRAS = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "abfs": "azure", "abfss": "azure", "az": "azure"}
#: Credential variables worth naming in an error, per scheme (their values are never printed).
CREDENTIAL_HINTS = {
    "s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, an instance role), and "
          "AWS_ENDPOINT_URL for a store other than AWS",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS (or the machine's service account)",
    "abfss": "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or AZURE_CLIENT_ID/"
             "AZURE_TENANT_ID/AZURE_CLIENT_SECRET",
}
SETTING = "upload.staging_dir"


class StagingError(ConfigError):
    """The staging location cannot be used; the message names the setting or variable."""


def scheme_of(uri: str) -> str:
    """The URI scheme (``s3`` for ``s3a://``), or ``""`` for a local path or ``file://``."""
    match = _SCHEME.match(uri)
    if not match:
        return ""
    scheme = match.group(1).lower()
    if scheme in ("file", "local"):
        return ""
    return SCHEME_ALIASES.get(scheme, scheme)


def is_local(uri: str) -> bool:
    return scheme_of(uri) == ""


def local_path(uri: str) -> Path:
    if uri.lower().startswith("file://"):
        return Path(urlsplit(uri).path)
    return Path(uri)


def hadoop_uri(uri: str) -> str:
    """``uri`` as Hadoop names it (``s3://`` is ``s3a://`` there), for Spark's file listing."""
    match = _SCHEME.match(uri)
    if match and match.group(1).lower() == "s3":
        return "s3a://" + uri[match.end():]
    return uri


def check_filesystem(uri: str) -> None:
    """Fail with a clear message when no installed filesystem serves ``uri``'s scheme."""
    scheme = scheme_of(uri)
    if not scheme:
        return
    extra = EXTRAS.get(scheme)
    hint = (f"pip install 'mparticle-meta-backfill[{extra}]' on the driver and the executors"
            if extra else "install the fsspec filesystem for it")
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:
        raise StagingError(f"setting '{SETTING}': {uri} is on object storage ({scheme}://), "
                           f"which needs fsspec: {hint}") from None
    try:
        fsspec.get_filesystem_class(scheme)
    except (ImportError, ValueError) as exc:
        raise StagingError(f"setting '{SETTING}': no filesystem for {scheme}:// is installed "
                           f"({type(exc).__name__}): {hint}") from None


class _Writer(Protocol):
    def write(self, row: dict[str, Any]) -> None: ...


class Staging:
    """The staging area at ``uri`` (see the module docstring for the layout)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.local = is_local(uri)
        if self.local:
            self.root = str(local_path(self.uri))
            self._fs: Any = None
        else:
            check_filesystem(uri)
            import fsspec

            scheme = scheme_of(uri)
            # Listings are never cached: another process (a task, the next run) changes them.
            self._fs = fsspec.filesystem(scheme, use_listings_cache=False,
                                         skip_instance_cache=True)
            self.root = self._fs._strip_protocol(f"{scheme}://{self.uri.split('://', 1)[1]}")

    def __repr__(self) -> str:
        return f"Staging({self.uri!r})"

    # ----- generic object operations (also used by the run lease) ---------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def names(self, *parts: str) -> list[str]:
        """Names (not paths) directly under ``parts``; empty when it does not exist."""
        folder = self.path(*parts)
        if self.local:
            try:
                return sorted(os.listdir(folder))
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            entries = self._fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries
                      if e.rstrip("/") != folder)

    def read(self, *parts: str) -> bytes | None:
        path = self.path(*parts)
        try:
            if self.local:
                return Path(path).read_bytes()
            return bytes(self._fs.cat_file(path))
        except FileNotFoundError:
            return None

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """Several objects at once (concurrent requests on object storage)."""
        if not paths:
            return {}
        if self.local:
            out = {}
            for p in paths:
                try:
                    out[p] = Path(p).read_bytes()
                except FileNotFoundError:
                    continue
            return out
        got = self._fs.cat(paths, on_error="omit")
        if isinstance(got, bytes):  # one path: cat returns its bytes
            return {paths[0]: got}
        return {k if k.startswith(self.root) else self._fs._strip_protocol(k): bytes(v)
                for k, v in got.items()}

    def create_exclusive(self, data: bytes, *parts: str) -> bool:
        """Write a new object atomically; False when it already exists (nothing written).

        Local disk: a hard link of a fully written temporary file (``link`` fails when the name
        exists). Object storage: a conditional PUT (``If-None-Match: *`` on S3).
        """
        path = self.path(*parts)
        if self.local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            _write_synced(tmp, data)
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        try:
            self._fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            return False

    def replace(self, data: bytes, *parts: str) -> None:
        """Write an object atomically, replacing it when it exists."""
        path = self.path(*parts)
        if self.local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
            _write_synced(tmp, data)
            os.replace(tmp, path)
            return
        self._fs.pipe_file(path, data)

    def delete(self, *parts: str) -> None:
        path = self.path(*parts)
        try:
            if self.local:
                os.unlink(path)
            else:
                self._fs.rm_file(path)
        except FileNotFoundError:
            pass

    def remove_tree(self, *parts: str) -> None:
        path = self.path(*parts)
        if self.local:
            import shutil

            shutil.rmtree(path, ignore_errors=True)
            return
        try:
            self._fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass

    # ----- chunk outcomes -------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        """Runs with a staging folder (names starting with ``_`` are not runs)."""
        return [n for n in self.names() if not n.startswith(("_", "."))
                and (not self.local or Path(self.path(n)).is_dir())]

    def outcome_paths(self, run_id: str, partition: int | None = None) -> list[str]:
        prefix = "part-" if partition is None else f"part-{partition:05d}-"
        return [self.path(run_id, n) for n in self.names(run_id)
                if n.startswith(prefix) and n.endswith(".jsonl")]

    def outcomes(self, paths: list[str]) -> Iterator[dict[str, Any]]:
        """The staged outcome rows in ``paths``; a torn last line (a chunk that was in flight
        when a local writer died) is skipped."""
        for _, data in sorted(self.read_many(paths).items()):
            for line in data.decode("utf-8", errors="replace").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    yield row

    def delivered_by_earlier_attempts(self, run_id: str, partition: int) -> set[str]:
        keys: set[str] = set()
        for row in self.outcomes(self.outcome_paths(run_id, partition)):
            if row.get("status") == "delivered":
                keys.update(row.get("event_keys") or ())
        return keys

    @contextmanager
    def writer(self, run_id: str, partition: int, attempt: int) -> Iterator[_Writer]:
        """Record one task attempt's outcomes; each ``write`` is durable when it returns."""
        name = f"part-{partition:05d}-{attempt}"
        if self.local:
            folder = Path(self.path(run_id))
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / f"{name}.jsonl", "a", encoding="utf-8") as f:
                yield _LocalWriter(f)
        else:
            yield _ObjectWriter(self, run_id, name)

    # ----- checks ---------------------------------------------------------------------------
    def check_reachable(self) -> None:
        """List the root once: unreachable storage, a missing bucket and missing or refused
        credentials fail here, with the setting and the variables to look at."""
        if self.local:  # creates nothing: the run creates the folder when it stages
            existing = Path(self.root)
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
                raise StagingError(f"setting '{SETTING}': cannot create {self.root}: "
                                   f"{existing} is not a writable folder")
            return
        try:
            self._fs.ls(self.root.split("/", 1)[0], detail=False)
        except Exception as exc:
            raise StagingError(self._explain(exc)) from None

    def _explain(self, exc: BaseException) -> str:
        scheme = scheme_of(self.uri)
        name = type(exc).__name__
        text = str(exc)
        creds = CREDENTIAL_HINTS.get(scheme, "the store's credential settings")
        bucket = self.root.split("/", 1)[0]
        if isinstance(exc, FileNotFoundError):
            return (f"setting '{SETTING}': the bucket/container '{bucket}' of {self.uri} does "
                    "not exist (create it first)")
        if "credential" in text.lower() or name in ("NoCredentialsError",
                                                     "PartialCredentialsError"):
            return (f"setting '{SETTING}': no credentials for {self.uri} were found: set "
                    f"{creds}")
        if isinstance(exc, PermissionError) or "AccessDenied" in text or "Forbidden" in text \
                or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
            return (f"setting '{SETTING}': access to {self.uri} was refused ({name}): check "
                    f"{creds}")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        where = f" at {endpoint} (AWS_ENDPOINT_URL)" if scheme == "s3" and endpoint else ""
        return (f"setting '{SETTING}': cannot reach the object store for {self.uri}{where} "
                f"({name}); check the endpoint and the network")


class _LocalWriter:
    def __init__(self, f: Any) -> None:
        self._f = f

    def write(self, row: dict[str, Any]) -> None:
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())


class _ObjectWriter:
    def __init__(self, staging: Staging, run_id: str, name: str) -> None:
        self._staging = staging
        self._run_id = run_id
        self._name = name
        self._seq = 0

    def write(self, row: dict[str, Any]) -> None:
        self._seq += 1
        data = (json.dumps(row) + "\n").encode("utf-8")
        self._staging.replace(data, self._run_id, f"{self._name}-{self._seq:06d}.jsonl")


def _write_synced(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
