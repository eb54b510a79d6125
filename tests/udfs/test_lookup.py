"""udfs/lookup.py: the bucketed literal lookup table."""

from __future__ import annotations

from chispa import assert_column_equality
from pyspark.sql import functions as F

from udfs.lookup import bucket_of, bucketed_get, bucketed_table_sql

PAIRS = [("AB", "1"), ("ABC", "2"), ("B", "3"), ("ÉCOLE", "4"), ("A'B", "5"),
         ("X" * 60, "6"), ("AB", "ignored: first wins"), ("", "7")]


def test_bucket_of():
    assert bucket_of("AB") == 2 * 27 + 1
    assert bucket_of("ZZ") == 2 * 27 + 26
    assert bucket_of("ÉCOLE") == 5 * 27  # a first letter outside A-Z: bucket 0 of its length
    assert bucket_of("X" * 60, 48) == bucket_of("X" * 48, 48)
    assert bucket_of("") == 0


def test_bucketed_get(spark):
    sql = bucketed_table_sql(PAIRS, max_length=10)
    rows = [("AB", "1"), ("ABC", "2"), ("B", "3"), ("ÉCOLE", "4"), ("A'B", "5"),
            ("X" * 60, "6"), ("", "7"), ("X" * 59, None), ("ab", None), ("C", None),
            (None, None)]
    df = spark.createDataFrame(rows, "k string, expected string")
    df = df.withColumn("actual", bucketed_get(sql, F.col("k"), max_length=10))
    assert_column_equality(df, "actual", "expected")
