"""Listing a dump: files, folders searched recursively and globs, through Hadoop's FileSystem,
without mParticle's verification objects, hidden names and pruned date folders."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

#: mParticle's bucket-verification objects are not data (SPEC §1).
VERIFICATION_FILE = re.compile(
    r"^(mParticle_Bucket_Verification_.*\.txt|mparticle_validation\.txt)$", re.IGNORECASE
)
DATE_FOLDER = re.compile(r"^(\d{4}-\d{2}-\d{2})$")



@dataclass(frozen=True, order=True)
class InputFile:
    """One data file of the input: its qualified path, size in bytes and modification time
    (epoch milliseconds)."""

    path: str
    length: int
    modified: int


@dataclass(frozen=True)
class Listing:
    """The data files of an input, sorted by path."""

    files: tuple[InputFile, ...]

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


def list_input_files(spark: SparkSession, inputs: Iterable[str], from_date: str | None = None,
                     to_date: str | None = None, lookback_days: int = 1,
                     exclude: Iterable[str] = ()) -> Listing:
    """Expand files, folders (recursively) and globs into the list of data files.

    Uses Hadoop's FileSystem through the session, so the same code lists local folders, HDFS,
    S3, ABFS or GCS on a cluster. Hidden names (``.``/``_``), zero-byte files and mParticle's
    verification objects are skipped; date folders outside ``from_date``/``to_date`` are pruned;
    files under ``exclude`` (the job's own output folder, should it lie inside the input) too.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    Path = jvm.org.apache.hadoop.fs.Path
    files: list[InputFile] = []
    seen: set[str] = set()
    excluded = tuple(
        Path(p).getFileSystem(hconf).makeQualified(Path(p)).toString().rstrip("/") + "/"
        for p in exclude if p
    )
    for pattern in inputs:
        root = Path(pattern)
        fs = root.getFileSystem(hconf)
        statuses = fs.globStatus(root) or []
        for status in statuses:
            base = status.getPath()
            base_text = base.toString()
            if status.isFile():
                candidates: list[tuple[Any, list[str]]] = [(status, [])]
            else:
                candidates = []
                it = fs.listFiles(base, True)
                while it.hasNext():
                    child = it.next()
                    rel = child.getPath().toString()[len(base_text):].strip("/").split("/")
                    candidates.append((child, rel[:-1]))
            for child, folders in candidates:
                name = child.getPath().getName()
                if not _is_data_name(name) or child.getLen() == 0:
                    continue
                if any(part.startswith((".", "_")) for part in folders):
                    continue
                if not _date_in_range(folders, from_date, to_date, lookback_days):
                    continue
                text = child.getPath().toString()
                if text.startswith(excluded):
                    continue
                if text not in seen:
                    seen.add(text)
                    files.append(InputFile(text, child.getLen(), child.getModificationTime()))
    if not files:
        raise NoInputFiles(f"no data files found under: {', '.join(inputs)}")
    return Listing(tuple(sorted(files)))
