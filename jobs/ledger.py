"""All Delta Lake I/O of the job: payloads, quarantine, results (the ledger) and runs.

A table location is either a path (anything with ``/`` or a URI scheme) or a metastore table
name (``db.table``). Writes are idempotent where a re-run can repeat them: staged outcomes are
appended with Delta's idempotent-write options, so folding the same staging folder twice
changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

RESULTS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType(), False),
    T.StructField("chunk_id", T.StringType(), False),
    T.StructField("task_attempt", T.LongType(), False),
    T.StructField("set_id", T.StringType()),
    T.StructField("dialect", T.StringType()),
    T.StructField("event_count", T.IntegerType()),
    T.StructField("event_keys", T.ArrayType(T.StringType())),
    T.StructField("status", T.StringType()),
    T.StructField("http_status", T.IntegerType()),
    T.StructField("error_code", T.IntegerType()),
    T.StructField("error_subcode", T.IntegerType()),
    T.StructField("error_message", T.StringType()),
    T.StructField("fbtrace_id", T.StringType()),
    T.StructField("attempts", T.IntegerType()),
    T.StructField("latency_ms", T.LongType()),
    T.StructField("events_received", T.LongType()),
    T.StructField("started_at", T.TimestampType()),
    T.StructField("finished_at", T.TimestampType()),
])

RUNS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType(), False),
    T.StructField("mode", T.StringType()),
    T.StructField("status", T.StringType()),
    T.StructField("dialect", T.StringType()),
    T.StructField("set_id", T.StringType()),
    T.StructField("config_digest", T.StringType()),
    T.StructField("reference_time", T.LongType()),
    T.StructField("started_at", T.TimestampType()),
    T.StructField("finished_at", T.TimestampType()),
    T.StructField("counts", T.MapType(T.StringType(), T.LongType())),
    T.StructField("report", T.StringType()),
])

_PATH = re.compile(r"[/\\]|^[a-zA-Z][a-zA-Z0-9+.-]*:")


def is_path(location: str) -> bool:
    """True for a filesystem path or URI, False for a metastore table name."""
    return bool(_PATH.search(location))


def table_exists(spark: SparkSession, location: str) -> bool:
    if is_path(location):
        return DeltaTable.isDeltaTable(spark, location)
    return spark.catalog.tableExists(location)


def read_table(spark: SparkSession, location: str) -> DataFrame:
    if is_path(location):
        return spark.read.format("delta").load(location)
    return spark.read.table(location)


def write_table(df: DataFrame, location: str, mode: str = "append",
                partition_by: tuple[str, ...] = ()) -> None:
    """Write ``df`` to the Delta table at ``location`` (created on first write)."""
    writer = df.write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if is_path(location):
        writer.save(location)
    else:
        writer.saveAsTable(location)


# ----- payloads / quarantine ------------------------------------------------------------------
def write_payloads(rows: DataFrame, location: str) -> None:
    """Replace the payloads table with this run's payloads (the upload reads them back)."""
    write_table(rows, location, mode="overwrite")


def append_quarantine(rows: DataFrame, location: str) -> None:
    write_table(rows, location, mode="append")


# ----- results (the ledger) -------------------------------------------------------------------
def append_results(outcomes: DataFrame, location: str, batch_id: str) -> None:
    """Append chunk outcomes to the ledger, once per ``batch_id`` (a staging folder).

    Delta's idempotent writes (``txnAppId`` + ``txnVersion``) make a repeated append of the same
    batch a no-op, so folding a staging folder again after a crash between the commit and the
    folder's removal inserts nothing twice.
    """
    writer = (outcomes.write.format("delta").mode("append")
              .option("txnAppId", f"backfill-fold-{batch_id}").option("txnVersion", 1))
    if is_path(location):
        writer.save(location)
    else:
        writer.saveAsTable(location)


def event_status(spark: SparkSession, location: str, set_id: str) -> DataFrame:
    """Per event key, what the ledger knows for ``set_id``: ``delivered`` when any outcome
    delivered it, else the latest outcome's status. Columns: ``event_key``, ``ledger_status``."""
    if not table_exists(spark, location):
        return spark.createDataFrame([], "event_key string, ledger_status string")
    outcomes = read_table(spark, location).where(F.col("set_id") == F.lit(set_id))
    per_event = outcomes.select(
        F.explode("event_keys").alias("event_key"), "status", "finished_at"
    )
    return per_event.groupBy("event_key").agg(
        F.when(F.max(F.col("status") == "delivered"), F.lit("delivered"))
        .otherwise(F.max_by("status", "finished_at")).alias("ledger_status")
    )


# ----- runs -----------------------------------------------------------------------------------
def record_run(spark: SparkSession, location: str, run: dict[str, Any]) -> None:
    """Append the run's row (one row per run, written once at its end)."""
    write_table(spark.createDataFrame([run], RUNS_SCHEMA), location, mode="append")
