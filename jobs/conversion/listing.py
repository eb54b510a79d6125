"""Listing a dump: files, folders searched recursively and globs, through Spark's file index,
without mParticle's verification objects, hidden names and pruned date folders."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

#: mParticle's bucket-verification objects are not data (SPEC §1).
VERIFICATION_FILE = re.compile(
    r"^(mParticle_Bucket_Verification_.*\.txt|mparticle_validation\.txt)$", re.IGNORECASE
)
DATE_FOLDER = re.compile(r"^(\d{4}-\d{2}-\d{2})$")
_GLOB = re.compile(r"[*?\[{]")



@dataclass(frozen=True, order=True)
class InputFile:
    """One data file of the input: its qualified path, size in bytes and modification time
    (epoch milliseconds)."""

    path: str
    length: int
    modified: int


@dataclass(frozen=True)
class Listing:
    """The data files of an input, sorted by path, and what the expiry pruning left out:
    files (and their bytes) in date folders that can only hold events too old to send."""

    files: tuple[InputFile, ...]
    expired_files: int = 0
    expired_bytes: int = 0

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    @property
    def total_bytes(self) -> int:
        return sum(f.length for f in self.files)


class NoInputFiles(ValueError):
    """The input paths matched no data file."""


def _is_data_name(name: str) -> bool:
    return not (name.startswith((".", "_")) or VERIFICATION_FILE.match(name))


def _date_in_range(relative_parts: Sequence[str], from_date: str | None,
                   to_date: str | None, lookback_days: int = 1) -> bool:
    """Prune ``YYYY-MM-DD`` folders outside the range.

    mParticle names date folders by first-event time or upload time, so a folder can hold
    events of later days (``lookback_days`` before ``from_date`` are kept) and, across time
    zones, of the day before (one day after ``to_date`` is kept). The exact filter on event
    time happens in the transform.
    """
    if not (from_date or to_date):
        return True
    for part in relative_parts:
        m = DATE_FOLDER.match(part)
        if not m:
            continue
        day = dt.date.fromisoformat(m.group(1))
        if from_date and day < dt.date.fromisoformat(from_date) - dt.timedelta(lookback_days):
            return False
        if to_date and day > dt.date.fromisoformat(to_date) + dt.timedelta(days=1):
            return False
    return True


def expiry_date(reference_time: int, max_event_age_days: int) -> str:
    """The UTC day of the oldest event time that can still be sent (SPEC §8 ``too_old``)."""
    oldest = dt.datetime.fromtimestamp(reference_time - max_event_age_days * 86400, dt.UTC)
    return oldest.date().isoformat()


def _literal_prefix(pattern: str) -> str:
    """The part of an input pattern before its first glob component."""
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if _GLOB.search(part):
            return "/".join(parts[:i])
    return pattern


def _path_part(path: str) -> str:
    return (urllib.parse.urlsplit(path).path or path).rstrip("/")


def _listed(spark: SparkSession, pattern: str) -> list[Any]:
    """(path, length, modified ms) of every file under ``pattern``, listed by Spark's own file
    index in the JVM (in parallel on the cluster for many folders) and collected in one call;
    file contents are not read. Spark's index already leaves out ``.``/``_`` names."""
    try:
        return (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
                .load(pattern)
                .selectExpr("path", "length", "unix_millis(modificationTime) AS modified")
                .collect())
    except AnalysisException as exc:
        if exc.getCondition() == "PATH_NOT_FOUND":
            return []
        raise


def list_input_files(spark: SparkSession, inputs: Iterable[str], from_date: str | None = None,
                     to_date: str | None = None, lookback_days: int = 1,
                     exclude: Iterable[str] = (), expiry: str | None = None) -> Listing:
    """Expand files, folders (recursively) and globs into the list of data files.

    Lists through Spark's file index (Hadoop's FileSystem underneath), so the same code lists
    local folders, HDFS, S3, ABFS or GCS on a cluster. Hidden names (``.``/``_``, files and
    folders), zero-byte files and mParticle's verification objects are skipped; date folders
    (below the literal part of each input) outside ``from_date``/``to_date`` are pruned, and so
    are those older than ``expiry`` (the day of the oldest sendable event, with the same
    look-back), which the listing counts; files under ``exclude`` (the job's own output
    folder, should it lie inside the input) too.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    Path = jvm.org.apache.hadoop.fs.Path

    def qualified(p: str) -> str:
        return str(Path(p).getFileSystem(hconf).makeQualified(Path(p)).toString())

    excluded = tuple(_path_part(qualified(p)) + "/" for p in exclude if p)
    files: dict[str, InputFile] = {}
    expired: dict[str, int] = {}
    for pattern in inputs:
        prefix = _path_part(qualified(_literal_prefix(pattern) or "/"))
        for row in _listed(spark, pattern):
            path, length = str(row["path"]), int(row["length"])
            part = _path_part(path)
            if length == 0 or part.startswith(excluded):
                continue
            relative = part[len(prefix):] if part.startswith(prefix + "/") else ""
            *folders, name = relative.strip("/").split("/") if relative else [part]
            if not _is_data_name(name.rsplit("/", 1)[-1]):
                continue
            if any(f.startswith((".", "_")) for f in folders):
                continue
            if not _date_in_range(folders, from_date, to_date, lookback_days):
                continue
            if expiry and not _date_in_range(folders, expiry, None, lookback_days):
                expired[path] = length
                continue
            files[path] = InputFile(path, length, int(row["modified"]))
    if not files:
        raise NoInputFiles(f"no data files found under: {', '.join(inputs)}")
    return Listing(tuple(sorted(files.values())), expired_files=len(expired),
                   expired_bytes=sum(expired.values()))
