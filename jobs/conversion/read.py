"""Reading mParticle batch dumps: the explicit schema, parsing and quarantine.

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

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

_S = T.StringType()

#: A product's descriptive texts are variants: rich contents (SPEC §9) send them only when they
#: are JSON strings, which a string field cannot tell from a number (both arrive as text).
_V = T.VariantType()

PRODUCT = T.StructType([
    T.StructField("id", _S),
    T.StructField("name", _V),
    T.StructField("brand", _V),
    T.StructField("category", _V),
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
    as_map = F.from_json(text, T.MapType(_S, _S).simpleString())
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
