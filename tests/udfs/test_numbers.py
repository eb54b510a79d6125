"""udfs/numbers.py: numbers in loose string fields, amounts and quantities (SPEC §3, §8)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from chispa import assert_column_equality
from pyspark.sql import functions as F

from udfs.numbers import NUMBER_TYPE, is_invalid_amount, is_number, quantity, to_number

D = Decimal
# text, is_number, to_number, is_invalid_amount, quantity
ROWS = [
    (None, None, None, False, D(1)),
    ("12.50", True, D("12.5"), False, D("12.5")),
    (" 12.50 ", True, D("12.5"), False, D("12.5")),
    ("\u00a010.5\u3000", True, D("10.5"), False, D("10.5")),
    ("\t\n7\u202f", True, D(7), False, D(7)),
    ("2", True, D(2), False, D(2)),
    ("-3", True, D(-3), False, None),
    ("-1", True, D(-1), False, None),
    ("+4", True, D(4), False, D(4)),
    ("0", True, D(0), False, None),
    ("-0.0", True, D(0), False, None),
    ("007", True, D(7), False, D(7)),
    ("1e3", True, D(1000), False, D(1000)),
    ("1E+2", True, D(100), False, D(100)),
    ("1.5E+2", True, D(150), False, D(150)),
    ("2.5e-1", True, D("0.25"), False, D("0.25")),
    ("1e-20", True, D(0), False, None),  # rounds to 0 at 10 decimals
    ("0.12345678905", True, D("0.1234567891"), False, D("0.1234567891")),  # half-up
    ("1793836800123", True, D(1793836800123), False, D(1793836800123)),  # epoch ms
    ("9999999999999999999999999999.9999999999", True,
     D("9999999999999999999999999999.9999999999"), False,
     D("9999999999999999999999999999.9999999999")),
    ("1e-9999", True, D(0), False, None),
    # numbers outside DECIMAL(38, 10): no value, an invalid amount, never a crash
    ("1e28", True, None, True, None),
    ("10000000000000000000000000000", True, None, True, None),
    ("1e9999", True, None, True, None),
    ("1e10000", True, None, True, None),
    ("1e-10000", True, None, True, None),
    ("1e2147483647", True, None, True, None),  # makes BigDecimal throw ArithmeticException
    ("1e-2147483647", True, None, True, None),
    ("1e-99999999", True, None, True, None),  # would take minutes to scale
    # not numbers
    ("", False, None, True, None),
    ("   ", False, None, True, None),
    ("NaN", False, None, True, None),
    ("Infinity", False, None, True, None),
    ("-Infinity", False, None, True, None),
    ("1,5", False, None, True, None),
    (".5", False, None, True, None),
    ("5.", False, None, True, None),
    ("abc", False, None, True, None),
    ("x", False, None, True, None),
    ("true", False, None, True, None),
    ('{"a":1}', False, None, True, None),
    ("[1]", False, None, True, None),
    ("1 000", False, None, True, None),
    ("0x1A", False, None, True, None),
    ("1e", False, None, True, None),
    ("1e+", False, None, True, None),
    ("--1", False, None, True, None),
    ("1.5d", False, None, True, None),
    ("\u0661\u0662", False, None, True, None),  # Arabic-Indic digits are not ASCII digits
    ("\uff11\uff12", False, None, True, None),  # full-width digits
    ("12\n3", False, None, True, None),
]


@pytest.fixture(scope="module")
def numbers_df(spark):
    schema = ("s string, is_number boolean, to_number decimal(38,10), invalid boolean, "
              "quantity decimal(38,10)")
    s = F.col("s")
    return spark.createDataFrame(ROWS, schema).select(
        "*",
        is_number(s).alias("actual_is_number"),
        to_number(s).alias("actual_to_number"),
        is_invalid_amount(s).alias("actual_invalid"),
        quantity(s).alias("actual_quantity"),
    )


def test_is_number(numbers_df):
    assert_column_equality(numbers_df, "actual_is_number", "is_number")


def test_to_number(numbers_df):
    assert numbers_df.schema["actual_to_number"].dataType == NUMBER_TYPE
    assert_column_equality(numbers_df, "actual_to_number", "to_number")


def test_is_invalid_amount_is_never_null(numbers_df):
    assert_column_equality(numbers_df, "actual_invalid", "invalid")


def test_quantity_defaults_to_one_and_drops_non_positive(numbers_df):
    assert numbers_df.schema["actual_quantity"].dataType == NUMBER_TYPE
    assert_column_equality(numbers_df, "actual_quantity", "quantity")


def test_money_adds_up_exactly(spark):
    prices = [("0.1",), ("0.2",), (" 1e-1 ",), (None,)]
    total = spark.createDataFrame(prices, "price string").agg(
        F.sum(to_number(F.col("price"))).alias("total")
    ).first()["total"]
    assert total == Decimal("0.4")  # 0.1 + 0.2 + 0.1 as doubles is 0.4000000000000001
