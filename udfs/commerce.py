"""Commerce fields of one event (SPEC §2, §3, §8): name, time, value, currency, contents, ids."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from udfs.numbers import is_invalid_amount, number_of_trimmed, quantity_of, to_number
from udfs.text import blank_to_null, empty_to_null, trim_unicode, upper_invariant

#: Rich contents fields (SPEC §9) → the product fields they come from.
_DETAILS = {"title": "name", "brand": "brand", "category": "category"}
#: Amounts: 20 integer digits and 10 decimals, so adding two never loses decimal places.
MONEY = T.DecimalType(30, 10)


def event_name(action: Column, names: Mapping[str, str]) -> Column:
    """Meta's event name for a product action, or null when the action is not mapped (SPEC §2).

    The mapping is a literal map in the plan (configuration, not data).
    """
    lookup = F.create_map(*[F.lit(x) for kv in sorted(names.items()) for x in kv])
    return F.when(action.isNotNull(), lookup[action])


def event_time(timestamp_ms: Column) -> Column:
    """``floor(ms / 1000)`` as whole seconds; null when the timestamp is null or not a number."""
    return F.floor(to_number(timestamp_ms) / F.lit(1000)).cast("long")


def product_text(value: Column) -> Column:
    """A product's ``name``/``brand``/``category`` as sent in rich contents (SPEC §9): the text of
    a JSON string, trimmed; null when it is empty, blank, null or not a JSON string (a number,
    boolean, object or array is ignored).

    ``value`` is the field read as a ``variant`` (the reader's schema keeps these fields as
    variants, so a JSON ``12`` and a JSON ``"12"`` stay apart; a string schema would give the
    text ``12`` for both).

    Examples
    --------
    >>> spark.range(1).select(product_text(F.parse_json(F.lit('" Acme "')))).first()[0]
    'Acme'
    >>> spark.range(1).select(product_text(F.parse_json(F.lit("12")))).first()[0] is None
    True
    """
    return empty_to_null(_trimmed_product_text(value))


def _trimmed_product_text(value: Column) -> Column:
    """The text of a JSON string variant, trimmed; null when the variant is not a string."""
    is_string = F.schema_of_variant(value) == F.lit("STRING")
    return trim_unicode(F.when(is_string, F.variant_get(value, "$", "string")))


def parse_products(products: Column, details: bool = False) -> Column:
    """Each product's fields parsed once, for the amount, value and contents rules below.

    An array of ``{id, price, has_price, quantity}``: ``id`` blank → null, ``price`` its number
    (:func:`~udfs.numbers.to_number`, null when absent or not a number), ``has_price`` whether a
    price was given at all, ``quantity`` as :func:`~udfs.numbers.quantity` (1 when absent, null
    when invalid). With ``details`` (rich contents, SPEC §9) also ``title``, ``brand`` and
    ``category`` (:func:`product_text` of ``name``, ``brand``, ``category``). A null array is an
    empty one.

    Why: a higher-order function (``transform``, ``filter``...) is evaluated row by row outside
    Spark's generated code, and Spark does not share one between expressions, so parsing the
    same price text in three rules costs three times; the ``*_parsed`` rules read these fields.
    """
    # Three passes, because inside a lambda Spark evaluates each occurrence of an expression
    # again: the texts are trimmed (and the variants read) once, then checked and parsed as
    # fields, and the quantity rule, which reads the parsed number twice, reads it as a field.
    fields = _DETAILS if details else {}
    trimmed = F.transform(F.coalesce(products, F.array()), lambda p: F.struct(
        trim_unicode(p["id"]).alias("id"),
        trim_unicode(p["price"]).alias("price"),
        p["price"].isNotNull().alias("has_price"),
        p["quantity"].isNull().alias("no_quantity"),
        trim_unicode(p["quantity"]).alias("quantity"),
        *[_trimmed_product_text(p[source]).alias(name) for name, source in fields.items()],
    ))
    parsed = F.transform(trimmed, lambda p: F.struct(
        empty_to_null(p["id"]).alias("id"),
        number_of_trimmed(p["price"]).alias("price"),
        p["has_price"].alias("has_price"),
        p["no_quantity"].alias("no_quantity"),
        number_of_trimmed(p["quantity"]).alias("number"),
        *[empty_to_null(p[name]).alias(name) for name in fields],
    ))
    return F.transform(parsed, lambda p: F.struct(
        p["id"].alias("id"), p["price"].alias("price"), p["has_price"].alias("has_price"),
        quantity_of(p["no_quantity"], p["number"]).alias("quantity"),
        *[p[name].alias(name) for name in fields],
    ))


def has_invalid_amount(total_amount: Column, products: Column) -> Column:
    """True when ``total_amount`` or any product ``price`` is present but not a number."""
    return has_invalid_amount_parsed(total_amount, parse_products(products))


def has_invalid_amount_parsed(total_amount: Column, parsed: Column) -> Column:
    """:func:`has_invalid_amount` on products from :func:`parse_products`."""
    bad_price = F.exists(parsed, lambda p: p["has_price"] & p["price"].isNull())
    return is_invalid_amount(total_amount) | F.coalesce(bad_price, F.lit(False))


def event_value(total_amount: Column, products: Column, mode: str = "sum_price") -> Column:
    """The event's value (SPEC §3): ``total_amount`` when present, else the products' prices.

    ``sum_price`` adds each valid price (quantity ignored); ``price_x_quantity`` multiplies by
    the quantity and skips products whose quantity is invalid (SPEC §8). Null when nothing is
    priced. Decimal arithmetic, so cents add up exactly.
    """
    return event_value_parsed(total_amount, parse_products(products), mode)


def event_value_parsed(total_amount: Column, parsed: Column, mode: str = "sum_price") -> Column:
    """:func:`event_value` on products from :func:`parse_products`."""

    def priced(p: Column) -> Column:
        ok = p["price"].isNotNull()
        if mode == "price_x_quantity":
            ok = ok & p["quantity"].isNotNull()
        return ok

    def line_amount(p: Column) -> Column:
        price = p["price"].try_cast(MONEY)
        if mode == "price_x_quantity":
            return F.try_multiply(price, p["quantity"].try_cast(MONEY)).try_cast(MONEY)
        return price

    # try_* arithmetic: an amount too large for MONEY gives a null value (an event without a
    # value), never an overflow error that would fail the job (ANSI mode is on in Spark 4).
    # One pass: the priced products' amounts are added in order from 0 (a null amount makes
    # the sum null, as it stays).
    summed = F.when(
        F.exists(parsed, priced),
        F.aggregate(parsed, F.lit(0).cast(MONEY),
                    lambda acc, p: F.when(priced(p), F.try_add(acc, line_amount(p))
                                          .try_cast(MONEY)).otherwise(acc)),
    )
    total = to_number(total_amount).try_cast(MONEY)
    return F.when(total_amount.isNotNull(), total).otherwise(summed)


def sendable_value(value: Column) -> Column:
    """The value as sent: a double, only when > 0 (Meta rejects 0 and negatives)."""
    return F.when(value > 0, value.cast("double"))


def currency_code(raw: Column, default_currency: str) -> Column:
    """``currency_code`` trimmed and upper-cased; the default when absent (SPEC §3)."""
    return F.coalesce(upper_invariant(trim_unicode(raw)), F.lit(default_currency.upper()))


def is_invalid_currency(raw: Column) -> Column:
    """True when ``currency_code`` is present but not three letters."""
    return raw.isNotNull() & ~F.coalesce(
        upper_invariant(trim_unicode(raw)).rlike(r"^[A-Z]{3}$"), F.lit(False)
    )


def contents(products: Column, dialect: str, details: bool = False) -> Column:
    """One entry per product with a non-empty id and a valid quantity; null when none.

    Legacy entries are ``{id, quantity, price}``, capi ``{id, quantity, item_price}``; the
    price is omitted when null (SPEC §3, §8). With ``details`` (capi, ``extended`` profile:
    SPEC §9) entries also carry ``title``, ``brand`` and ``category``, each only when non-empty.
    """
    return contents_parsed(parse_products(products, details), dialect, details)


def contents_parsed(parsed: Column, dialect: str, details: bool = False) -> Column:
    """:func:`contents` on products from :func:`parse_products` (with the same ``details``)."""
    price_key = "item_price" if dialect == "capi" else "price"

    def listed(p: Column) -> Column:
        return p["id"].isNotNull() & p["quantity"].isNotNull()

    extra = list(_DETAILS) if details else []
    entries = F.array_compact(F.transform(parsed, lambda p: F.when(listed(p), F.struct(
        p["id"].alias("id"),
        p["quantity"].cast("double").alias("quantity"),
        p["price"].cast("double").alias(price_key),
        *[p[name].alias(name) for name in extra],
    ))))
    return F.when(F.exists(parsed, listed), entries)


def event_id(source_message_id: Column, mparticle_event_id: Column, batch_identity: Column,
             position: Column) -> Column:
    """Meta's ``event_id``: ``source_message_id``, else mParticle's ``event_id``, else a digest of
    the batch identity and the event's position (stable across runs and machines, SPEC §3)."""
    fallback = F.sha2(F.concat_ws("#", batch_identity, position.cast("string")), 256)
    return F.coalesce(blank_to_null(source_message_id), blank_to_null(mparticle_event_id),
                      fallback)


def batch_identity(batch_id: Column, source_request_id: Column, line_digest: Column) -> Column:
    """What identifies a batch across redeliveries: ``batch_id`` and ``source_request_id`` when it
    has either (nulls encoded explicitly), else the digest of its line. (``mpid`` alone is not
    enough: one user sends many batches.)"""
    ids = F.to_json(F.struct(
        blank_to_null(batch_id).alias("b"), blank_to_null(source_request_id).alias("r"),
    ), {"ignoreNullFields": "true"})
    no_ids = blank_to_null(batch_id).isNull() & blank_to_null(source_request_id).isNull()
    return F.when(no_ids, line_digest).otherwise(ids)
