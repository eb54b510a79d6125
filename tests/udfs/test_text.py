"""udfs/text.py: Unicode trim, blanks, letters, locale-independent case (SPEC §8)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import pytest
from chispa import assert_column_equality
from chispa.column_comparer import ColumnsNotEqualError
from pyspark.sql import functions as F

from udfs.text import (
    WHITE_SPACE,
    WHITE_SPACE_CHARS,
    blank_to_null,
    letters_only,
    lower_invariant,
    trim_unicode,
    upper_invariant,
)

S = "s string, expected string"


def keep_letters(text: str) -> str:
    """Python's own reading of the rule: keep Unicode categories L and M."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LM")


def test_trim_unicode_strips_every_white_space_character(spark):
    rows = [
        (None, None),
        ("", ""),
        ("   ", ""),
        ("  a b  ", "a b"),
        ("\t\n a\r\n", "a"),
        ("\u00a0x\u00a0", "x"),  # no-break space
        ("\u2007x\u202f", "x"),  # figure space, narrow no-break space
        ("\u3000王\u3000", "王"),  # ideographic space
        ("\u0085\u2028x\u2029\u1680", "x"),  # NEL, line/paragraph separators, ogham space
        ("\u2003\u205fx\u200a", "x"),  # em space, medium math space, hair space
        ("a\u00a0\tb", "a\u00a0\tb"),  # inner whitespace kept
        ("\u200bx\ufeff", "\u200bx\ufeff"),  # zero-width space and BOM are not White_Space
    ]
    df = spark.createDataFrame(rows, S).withColumn("actual", trim_unicode(F.col("s")))
    assert_column_equality(df, "actual", "expected")


def test_trim_character_set_is_javas_white_space_property(spark):
    """The regex-free trim strips exactly what Java's ``\\p{IsWhite_Space}`` matches, for every
    code point of the BMP (surrogates aside) and a few supplementary ones, at either end."""
    points = [c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    points += [0x1F600, 0x20000, 0xE0020]
    df = spark.createDataFrame([(chr(c) + "x" + chr(c),) for c in points], "s string")
    regex = rf"\A{WHITE_SPACE}+|{WHITE_SPACE}+\z"
    mismatches = (df.withColumn("by_regex", F.regexp_replace("s", regex, ""))
                  .withColumn("by_trim", trim_unicode(F.col("s")))
                  .where(F.col("by_regex") != F.col("by_trim")).collect())
    assert mismatches == []
    stripped = df.where(trim_unicode(F.col("s")) == F.lit("x")).count()
    assert stripped == len(WHITE_SPACE_CHARS) == 25


def test_blank_to_null(spark):
    rows = [
        (None, None),
        ("", None),
        (" \t\n\u00a0\u2007\u202f\u3000 ", None),
        (" a ", "a"),
        ("\u00a00\u00a0", "0"),
    ]
    df = spark.createDataFrame(rows, S).withColumn("actual", blank_to_null(F.col("s")))
    assert_column_equality(df, "actual", "expected")


def test_letters_only_keeps_letters_and_marks_of_any_script(spark):
    inputs = [
        "Jean-Luc  O'Neil 3rd", "José", "Zoë", "Ægir", "ΟΔΥΣΣΕΑΣ", "Санкт-Петербург", "王 小明",
        "e\u0301",  # decomposed é: kept as two code points, no NFC
        "हिन्दी",  # Devanagari: vowel signs and virama are marks
        "a😀b",  # emoji is a symbol
        "\U00020000x",  # CJK Extension B letter outside the BMP
        "1234 !?-_.,", "",
    ]
    rows = [(s, keep_letters(s)) for s in inputs] + [(None, None)]
    df = spark.createDataFrame(rows, S).withColumn("actual", letters_only(F.col("s")))
    assert_column_equality(df, "actual", "expected")
    # the rule itself, pinned independently of the Python helper
    assert keep_letters("Jean-Luc  O'Neil 3rd") == "JeanLucONeilrd"
    assert keep_letters("e\u0301") == "e\u0301"
    assert keep_letters("a😀b") == "ab"


CASE_INPUTS = [
    "DİYARBAKIR", "İSTANBUL", "ISPARTA", "Iİ\u0307", "ΟΔΟΣ", "ÀÉÎ Ì Í Ĩ", "JÍ Į\u0301", "ǅ",
    "Straße", "türkiye", "istanbul", "i\u0307 j\u0307 į\u0307", "Foo.Bar@EXAMPLE.com",
    "\u0268 \u0456 \u0458 \u1e2d \u1ecb",  # the other soft-dotted letters (Latin, Cyrillic)
    "\u0131",  # dotless i
]


def test_lower_invariant_matches_root_locale(spark):
    rows = [(s, s.lower()) for s in CASE_INPUTS] + [(None, None)]
    df = spark.createDataFrame(rows, S).withColumn("actual", lower_invariant(F.col("s")))
    assert_column_equality(df, "actual", "expected")
    assert "DİYARBAKIR".lower() == "di\u0307yarbakir"  # dotted capital I keeps its dot as U+0307


def test_upper_invariant_matches_root_locale(spark):
    rows = [(s, s.upper()) for s in CASE_INPUTS] + [(None, None)]
    df = spark.createDataFrame(rows, S).withColumn("actual", upper_invariant(F.col("s")))
    assert_column_equality(df, "actual", "expected")


@pytest.fixture
def jvm_default_locale(spark) -> Iterator:
    """Set the driver JVM's default locale (local mode: tasks run in that JVM), then restore it."""
    jvm = getattr(spark.sparkContext, "_jvm", None)
    if jvm is None:
        pytest.skip("needs a classic (non-Connect) session")
    locale_class = jvm.java.util.Locale
    original = locale_class.getDefault()

    def set_locale(tag: str) -> None:
        locale_class.setDefault(locale_class.forLanguageTag(tag))

    try:
        yield set_locale
    finally:
        locale_class.setDefault(original)


@pytest.mark.parametrize("tag", ["tr-TR", "lt-LT"])
def test_case_mapping_ignores_the_jvm_default_locale(spark, jvm_default_locale, tag):
    jvm_default_locale(tag)
    rows = [(s, s.lower(), s.upper()) for s in CASE_INPUTS] + [(None, None, None)]
    df = spark.createDataFrame(rows, "s string, lower string, upper string").select(
        "lower", "upper",
        lower_invariant(F.col("s")).alias("actual_lower"),
        upper_invariant(F.col("s")).alias("actual_upper"),
        F.lower(F.col("s")).alias("spark_lower"),
    )
    assert_column_equality(df, "actual_lower", "lower")
    assert_column_equality(df, "actual_upper", "upper")
    # Guard: the locale switch did reach the tasks (Spark's own lower follows it, which is why
    # lower_invariant exists), so the assertions above really ran under that locale.
    with pytest.raises(ColumnsNotEqualError):
        assert_column_equality(df, "spark_lower", "lower")
