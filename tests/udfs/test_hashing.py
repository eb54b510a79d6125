"""udfs/hashing.py: SHA-256 hex digests and the "already hashed" pass-through (SPEC §4)."""

from __future__ import annotations

import hashlib

from chispa import assert_column_equality
from pyspark.sql import functions as F

from udfs.hashing import hash_unless_hashed, is_sha256_hex, sha256_hex

H = hashlib.sha256(b"someone@example.com").hexdigest()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_spec_vectors_are_plain_sha256_hex():
    assert sha("us") == "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"
    assert sha("f") == "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"


def test_sha256_hex_of_utf8_bytes(spark):
    inputs = ["", "us", "a b", "王", "e\u0301", "é", "\U0001f600", "İ"]
    rows = [(s, sha(s)) for s in inputs] + [(None, None)]
    df = spark.createDataFrame(rows, "s string, expected string").withColumn(
        "actual", sha256_hex(F.col("s"))
    )
    assert_column_equality(df, "actual", "expected")


def test_is_sha256_hex_needs_exactly_64_hex_characters(spark):
    rows = [
        (None, None),
        (H, True),
        (H.upper(), True),
        (H[:32].upper() + H[32:], True),
        (H[:63], False),
        (H + "a", False),
        ("g" + H[1:], False),
        (H + "\n", False),  # not even a trailing newline (Java's `$` would allow it)
        (" " + H, False),
        ("", False),
        ("0" * 64, True),
    ]
    df = spark.createDataFrame(rows, "s string, expected boolean").withColumn(
        "actual", is_sha256_hex(F.col("s"))
    )
    assert_column_equality(df, "actual", "expected")


def test_hash_unless_hashed(spark):
    rows = [
        (None, None, None),
        ("x", None, None),  # invalid after normalization: omitted
        ("!!", "", None),  # empty after normalization: omitted
        (" Foo ", "foo", sha("foo")),
        ("王", "王", sha("王")),
        (H.upper(), "ignored", H),  # already a hash: lower-cased, not hashed again
        (H, None, H),
        ("\u00a0\u3000" + H.upper() + "\t\n\u202f", "ignored", H),
        (H[:63], "n63", sha("n63")),
        (H + "0", "n65", sha("n65")),
    ]
    df = spark.createDataFrame(rows, "raw string, normalized string, expected string")
    df = df.withColumn("actual", hash_unless_hashed(F.col("raw"), F.col("normalized")))
    assert_column_equality(df, "actual", "expected")
