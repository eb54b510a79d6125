"""Numbers in loose JSON fields (SPEC §3, §8): prices, totals, quantities, timestamps.

The reader declares these fields as strings, so a JSON number arrives as its text (``10.5``,
``1e3``) and a JSON string as its content (``"10.5"`` → ``10.5``); ``true`` or ``{"a":1}`` arrive
as their JSON text and are not numbers.

Values are ``DECIMAL(38, 10)`` (:data:`NUMBER_TYPE`): exact for money, so prices add up to the
cent; 28 integer digits hold any price and any epoch-millisecond timestamp. More than 10
fractional digits are rounded half-up to 10. A number outside that range (``|x| >= 1e28``, or
an exponent of five digits or more, e.g. ``1e-10000``) has no value here: :func:`to_number`
gives null and :func:`is_invalid_amount` flags it, rather than silently dropping the amount or
letting Java's ``BigDecimal`` fail the task (``"1e2147483647"`` makes even ``try_cast`` throw
``ArithmeticException`` on Spark 4.2, and ``"1e-99999999"`` takes minutes).
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from udfs.text import trim_unicode

#: The type of every parsed number: exact decimal arithmetic for money.
NUMBER_TYPE = T.DecimalType(38, 10)

_NUMBER = r"\A[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?\z"
# A number whose exponent is below 10000 in absolute value (leading zeros aside): larger ones
# are outside DECIMAL(38, 10) once rounded, and costly (or fatal) for BigDecimal to scale. One
# regex for both checks: these rules run per product inside higher-order functions, where
# Spark evaluates every occurrence of an expression again.
_NUMBER_IN_RANGE = r"\A[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?0*[0-9]{1,4})?\z"


def is_number(col: Column) -> Column:
    """True when the text, after :func:`~udfs.text.trim_unicode`, is a number (SPEC §8).

    A number is an optional sign, ASCII digits, an optional fraction (``.`` and digits) and an
    optional exponent (``e``/``E``, optional sign, digits). ``""``, ``NaN``, ``Infinity``,
    ``1,5``, ``.5``, ``5.``, ``abc`` and ``true`` are not numbers. Null → null.

    Examples
    --------
    >>> spark.range(1).select(is_number(F.lit(" 1.5E+2 "))).first()[0]
    True
    """
    return trim_unicode(col).rlike(_NUMBER)


def to_number(col: Column) -> Column:
    """The value of a number text as ``DECIMAL(38, 10)``; null when not a number or out of range.

    Exponents are applied exactly (``1e3`` → 1000, ``1.5E+2`` → 150). Null → null. See the module
    notes for the range and rounding.

    Examples
    --------
    >>> spark.range(1).select(to_number(F.lit(" 12.50 "))).first()[0]
    Decimal('12.5000000000')
    """
    return number_of_trimmed(trim_unicode(col))


def number_of_trimmed(trimmed: Column) -> Column:
    """:func:`to_number` of a text already trimmed (:func:`~udfs.text.trim_unicode`)."""
    return F.when(trimmed.rlike(_NUMBER_IN_RANGE), trimmed.try_cast(NUMBER_TYPE))


def is_invalid_amount(col: Column) -> Column:
    """True when an amount is present (not null) but has no value (SPEC §3, §8 ``invalid_amount``).

    That is: not a number (:func:`is_number`), or a number outside ``DECIMAL(38, 10)``. Null →
    false (an absent amount is not invalid). Never null.

    Examples
    --------
    >>> spark.range(1).select(is_invalid_amount(F.lit("NaN"))).first()[0]
    True
    """
    return col.isNotNull() & to_number(col).isNull()


def quantity(col: Column) -> Column:
    """A product's quantity (SPEC §8) as ``DECIMAL(38, 10)``.

    Absent or null → 1; a number > 0 → that number; 0, a negative number or a non-number → null,
    meaning the product gets no ``contents`` entry (and adds nothing in ``price_x_quantity``
    mode). A quantity never makes an amount invalid.

    Examples
    --------
    >>> spark.range(1).select(quantity(F.lit(None).cast("string"))).first()[0]
    Decimal('1.0000000000')
    """
    return quantity_of(col.isNull(), to_number(col))


def quantity_of(absent: Column, number: Column) -> Column:
    """:func:`quantity` from its parts: whether the quantity is absent, and its
    :func:`to_number` (for callers that already parsed it)."""
    return F.when(absent, F.lit(1).cast(NUMBER_TYPE)).when(number > 0, number)
