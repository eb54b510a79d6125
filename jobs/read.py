"""Reading mParticle batch dumps: file listing, the explicit schema, parsing and quarantine.

The dump is read as text (one batch per line) and parsed with ``from_json`` against an explicit
schema, so there is no inference pass over the input and a malformed line is flagged, kept, and
given a reason instead of being silently dropped (``spark.read.json`` would split a top-level
array into rows and flag nothing).

Loose scalar fields are declared as strings: a JSON number arrives as its text and a JSON string
as its content, so ``"10.00"`` and ``10.00`` both parse, 64-bit ids never pass through a double,
and the casts happen deliberately in ``udfs/``. ``user_identities`` has two shapes (object or
array) and is read as its raw JSON text, parsed later per shape.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

#: mParticle's bucket-verification objects are not data (SPEC §1).
VERIFICATION_FILE = re.compile(
    r"^(mParticle_Bucket_Verification_.*\.txt|mparticle_validation\.txt)$", re.IGNORECASE
)
DATE_FOLDER = re.compile(r"^(\d{4}-\d{2}-\d{2})$")

_S = T.StringType()

PRODUCT = T.StructType([
    T.StructField("id", _S),
    T.StructField("name", _S),
    T.StructField("brand", _S),
    T.StructField("category", _S),
    T.StructField("price", _S),
    T.StructField("quantity", _S),
])

PRODUCT_ACTION = T.StructType([
    T.StructField("action", _S),
    T.StructField("transaction_id", _S),
    T.StructField("total_amount", _S),
    T.StructField("products", T.ArrayType(PRODUCT)),
])

EVENT_DATA = T.StructType([
    T.StructField("timestamp_unixtime_ms", _S),
    T.StructField("event_id", _S),
    T.StructField("source_message_id", _S),
    T.StructField("currency_code", _S),
    T.StructField("custom_attributes", T.MapType(_S, _S)),
    T.StructField("product_action", PRODUCT_ACTION),
])

EVENT = T.StructType([
    T.StructField("event_type", _S),
    T.StructField("data", EVENT_DATA),
])

#: The explicit batch schema: only the fields the job uses (SPEC §1), plus the corrupt flag.
BATCH_SCHEMA = T.StructType([
    T.StructField("events", T.ArrayType(EVENT)),
    T.StructField("user_identities", _S),
    T.StructField("user_attributes", T.MapType(_S, _S)),
    T.StructField("device_info", T.StructType([
        T.StructField("ios_advertising_id", _S),
        T.StructField("android_advertising_id", _S),
    ])),
    T.StructField("consent_state", _S),
    T.StructField("mpid", _S),
    T.StructField("source_request_id", _S),
    T.StructField("batch_id", _S),
    T.StructField("_corrupt_record", _S),
])

QUARANTINE_REASONS = ("invalid_json", "not_object", "events_not_array", "schema_mismatch")


class NoInputFiles(ValueError):
    """The input paths matched no data file."""


# ----- listing --------------------------------------------------------------------------------
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
                     exclude: Iterable[str] = (),
                     stats: list[tuple[str, int, int]] | None = None) -> list[str]:
    """Expand files, folders (recursively) and globs into the list of data files.

    Uses Hadoop's FileSystem through the session, so the same code lists local folders, HDFS,
    S3, ABFS or GCS on a cluster. Hidden names (``.``/``_``), zero-byte files and mParticle's
    verification objects are skipped; date folders outside ``from_date``/``to_date`` are pruned;
    files under ``exclude`` (the job's own output folder, should it lie inside the input) too.
    ``stats``, when given, receives ``(path, length, modification time)`` of each file.
    """
    jvm = spark.sparkContext._jvm
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    Path = jvm.org.apache.hadoop.fs.Path
    files: list[str] = []
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
                candidates = [(status, [])]
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
                    files.append(text)
                    if stats is not None:
                        stats.append((text, child.getLen(), child.getModificationTime()))
    if not files:
        raise NoInputFiles(f"no data files found under: {', '.join(inputs)}")
    return sorted(files)


# ----- parsing --------------------------------------------------------------------------------
def read_lines(spark: SparkSession, files: Sequence[str]) -> DataFrame:
    """One row per non-blank line: ``value`` (the raw text) and ``source_file``.

    Gzip files (``.gz``) are decompressed by Spark. Whitespace-only lines are not input lines
    (SPEC §8) and are dropped here.
    """
    lines = spark.read.text(list(files))
    return (
        lines.select("value", F.col("_metadata.file_path").alias("source_file"))
        .where(F.col("value").rlike(r"[^\p{IsWhite_Space}]"))
    )


def _quarantine_reason(value: Column, corrupt: Column) -> Column:
    """Why a line that failed the schema is malformed (SPEC §1, §8).

    Evaluated only for flagged lines (``when`` short-circuits), so it costs nothing on good
    input.
    """
    text = F.regexp_replace(value, r"^\p{IsWhite_Space}+|\p{IsWhite_Space}+$", "")
    as_map = F.from_json(text, T.MapType(_S, _S))
    events_raw = as_map.getItem("events")
    scalar = r'^("([^"\\]|\\.)*"|-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)$'
    return (
        F.when(corrupt.isNull(), F.lit(None).cast(_S))
        .when(text.startswith("{") & as_map.isNull(), F.lit("invalid_json"))
        .when(text.startswith("{") & events_raw.isNotNull()
              & F.json_array_length(events_raw).isNull(), F.lit("events_not_array"))
        .when(text.startswith("{"), F.lit("schema_mismatch"))
        .when(F.json_array_length(text).isNotNull() | text.rlike(scalar), F.lit("not_object"))
        .otherwise(F.lit("invalid_json"))
    )


def parse_batches(lines: DataFrame) -> DataFrame:
    """Parse each line against ``BATCH_SCHEMA``.

    Returns the lines with ``batch`` (the parsed struct, null for quarantined lines),
    ``quarantine_reason`` (null for good lines) and ``line_digest`` (SHA-256 of the raw line:
    identifies a line without keeping its text, and the batch when it carries no id).
    """
    parsed = F.from_json(
        F.col("value"), BATCH_SCHEMA,
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"},
    )
    return (
        lines.withColumn("batch", parsed)
        .withColumn("quarantine_reason",
                    _quarantine_reason(F.col("value"), F.col("batch._corrupt_record")))
        .withColumn("line_digest", F.sha2(F.col("value"), 256))
    )


def quarantine_rows(parsed: DataFrame, run_id: str, keep_raw: bool) -> DataFrame:
    """The rows of the ``quarantine`` table: file, digest, reason and (optionally) the line."""
    raw = F.col("value") if keep_raw else F.lit(None).cast(_S)
    return parsed.where(F.col("quarantine_reason").isNotNull()).select(
        F.lit(run_id).alias("run_id"),
        "source_file",
        "line_digest",
        F.col("quarantine_reason").alias("reason"),
        F.length("value").alias("line_length"),
        raw.alias("raw_line"),
    )


def good_batches(parsed: DataFrame) -> DataFrame:
    """The parsed batches (lines that passed), with their file and line digest."""
    return parsed.where(F.col("quarantine_reason").isNull()).select(
        "source_file", "line_digest", "batch"
    )
