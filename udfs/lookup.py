"""Literal lookup tables in the plan: a string → string table bucketed for speed.

Spark's map access scans a map's keys one by one, so one map of hundreds of keys costs hundreds
of string comparisons per row. The tables here are split into buckets by key length (capped)
and first letter (A-Z, else 0): a row computes its bucket, reads one element of a literal array
of small maps and scans a handful of keys. The table is written as SQL text (``array(map(...),
...)``), one Py4J call whatever its size, and Spark constant-folds it into one literal.

Keys are expected upper-case (the first-letter bucket reads ASCII ``A``-``Z``); any other first
character falls into bucket 0 of its length.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column
from pyspark.sql import functions as F

#: Keys longer than this share the last length bucket.
BUCKET_MAX_LENGTH = 48
_LETTERS = 27


def bucket_of(key: str, max_length: int = BUCKET_MAX_LENGTH) -> int:
    """The bucket of a lookup key in Python, as :func:`bucketed_get` computes it in Spark."""
    first = ord(key[0]) - 64 if key and "A" <= key[0] <= "Z" else 0
    return min(len(key), max_length) * _LETTERS + first


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def bucketed_table_sql(pairs: Iterable[tuple[str, str]],
                       max_length: int = BUCKET_MAX_LENGTH) -> str:
    """SQL text of the literal ``array<map<string,string>>``: one map per :func:`bucket_of`.

    Within a bucket the pairs keep their order; a key given twice keeps its first value.
    """
    buckets: list[dict[str, str]] = [{} for _ in range((max_length + 1) * _LETTERS)]
    for key, value in pairs:
        buckets[bucket_of(key, max_length)].setdefault(key, value)
    maps = [
        "map(" + ", ".join(_sql_string(x) for pair in bucket.items() for x in pair) + ")"
        if bucket else "cast(map() as map<string,string>)"
        for bucket in buckets
    ]
    return "array(" + ", ".join(maps) + ")"


def bucketed_get(table_sql: str, key: Column, max_length: int = BUCKET_MAX_LENGTH) -> Column:
    """The value of ``key`` in the table of :func:`bucketed_table_sql`; null when absent.

    ``key`` is read three times (length, first character, lookup): pass a column, or an
    expression Spark computes once in its projection.
    """
    first = F.ascii(key)
    bucket = (F.least(F.char_length(key), F.lit(max_length)) * F.lit(_LETTERS)
              + F.when((first >= F.lit(65)) & (first <= F.lit(90)), first - F.lit(64))
              .otherwise(F.lit(0)))
    return F.get(F.expr(table_sql), bucket)[key]
