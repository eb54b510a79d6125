"""udfs/commerce.py: event name, time, value, currency, contents and ids (SPEC §2, §3, §8,
§9)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from chispa import assert_column_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.conversion.read import PRODUCT
from udfs.commerce import (
    MONEY,
    batch_identity,
    contents,
    currency_code,
    event_id,
    event_name,
    event_time,
    has_invalid_amount,
    is_invalid_currency,
    product_text,
    sendable_value,
)
from udfs.commerce import event_value as value_of

D = Decimal
#: The reader's product fields that the builders use (all loose fields are strings).
PRODUCTS = "array<struct<id:string,price:string,quantity:string>>"

CAPI_NAMES = {
    "add_to_cart": "AddToCart", "add_to_wishlist": "AddToWishlist",
    "checkout": "InitiateCheckout", "purchase": "Purchase", "view_detail": "ViewContent",
}
LEGACY_NAMES = {**CAPI_NAMES, "add_to_wishlist": "AddToWishList", "checkout": "Checkout"}


def p(product_id: str | None, price: str | None = None, qty: str | None = None) -> tuple:
    """One product as the reader gives it: id, price text, quantity text."""
    return (product_id, price, qty)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_event_name(spark):
    rows = [
        (None, None, None),
        ("add_to_cart", "AddToCart", "AddToCart"),
        ("add_to_wishlist", "AddToWishlist", "AddToWishList"),
        ("checkout", "InitiateCheckout", "Checkout"),
        ("purchase", "Purchase", "Purchase"),
        ("view_detail", "ViewContent", "ViewContent"),
        # unmapped actions
        ("refund", None, None), ("remove_from_cart", None, None),
        ("checkout_option", None, None), ("click", None, None),
        ("remove_from_wish_list", None, None), ("", None, None),
    ]
    df = spark.createDataFrame(rows, "action string, capi string, legacy string").select(
        "*",
        event_name(F.col("action"), CAPI_NAMES).alias("actual_capi"),
        event_name(F.col("action"), LEGACY_NAMES).alias("actual_legacy"),
        event_name(F.col("action"), {"refund": "Refund"}).alias("actual_custom"),
        F.when(F.col("action") == "refund", F.lit("Refund")).alias("custom"),
    )
    assert_column_equality(df, "actual_capi", "capi")
    assert_column_equality(df, "actual_legacy", "legacy")
    assert_column_equality(df, "actual_custom", "custom")  # the mapping is configuration


def test_event_time_floors_milliseconds(spark):
    rows = [
        (None, None),
        ("1793836800123", 1793836800),
        ("1793836800999", 1793836800),
        ("1793836801000", 1793836801),
        ("1793836800999.9", 1793836800),
        (" 1793836800123\u00a0", 1793836800),
        ("1.793836800123E+12", 1793836800),
        ("1.7938368e12", 1793836800),
        ("17938368001230e-1", 1793836800),
        ("999", 0),
        ("0", 0),
        ("-1", -1),  # floor, not truncation
        ("-1000", -1),
        ("-1500", -2),
        # not a number: null (missing_timestamp)
        ("", None), ("  ", None), ("abc", None), ("NaN", None), ("true", None),
        ("1e28", None),  # outside DECIMAL(38, 10)
    ]
    df = spark.createDataFrame(rows, "ms string, expected long").withColumn(
        "actual", event_time(F.col("ms"))
    )
    assert df.schema["actual"].dataType.simpleString() == "bigint"
    assert_column_equality(df, "actual", "expected")


def test_has_invalid_amount_is_about_totals_and_prices_only(spark):
    rows = [
        (None, None, False),
        (None, [], False),
        ("25.50", [p("a", "10", "1")], False),
        (" 1e2 ", None, False),
        ("-3", None, False),  # a number, even if not sendable
        ("abc", None, True),
        ("", [p("a", "10", "1")], True),
        ("NaN", None, True),
        ("1e28", None, True),  # outside DECIMAL(38, 10)
        (None, [p("a", "10"), p("b", "ten")], True),
        (None, [p("a", "Infinity")], True),
        (None, [p("a", " ")], True),
        ("5", [p("a", "1,5")], True),  # the total does not excuse a bad price
        (None, [p("a", None, "1"), p(None, "2")], False),  # null price: absent
        (None, [None, p("a", "3")], False),  # a null product
        # quantities never make an amount invalid
        (None, [p("a", "10", "abc"), p("b", "1", "0"), p("c", "1", "-1"), p("d", "1", "")],
         False),
    ]
    df = spark.createDataFrame(
        rows, f"total string, products {PRODUCTS}, expected boolean"
    ).withColumn("actual", has_invalid_amount(F.col("total"), F.col("products")))
    assert_column_equality(df, "actual", "expected")


# total_amount, products, sum_price, price_x_quantity
VALUE_ROWS = [
    (None, None, None, None),
    (None, [], None, None),
    # total_amount wins when present, even over products and even when 0
    ("25.50", [p("a", "10", "1")], D("25.5"), D("25.5")),
    ("0", [p("a", "10", "1")], D(0), D(0)),
    (" 1e2 ", None, D(100), D(100)),
    ("abc", [p("a", "4", "1")], None, None),  # present but invalid: no value (invalid_amount)
    # otherwise the products' prices, summed exactly
    (None, [p("a", "0.1"), p("b", "0.2")], D("0.3"), D("0.3")),
    (None, [p("a", "0.1", "3")], D("0.1"), D("0.3")),
    (None, [p("a", "2.50", "3"), p("b", "1", "2")], D("3.5"), D("9.5")),
    (None, [p("a", "2", "1.5")], D(2), D(3)),
    (None, [p("a", "19.99", None), p("b", "0.01", " 2 ")], D(20), D("20.01")),
    # an invalid quantity: the price counts in sum_price, nothing in price_x_quantity
    (None, [p("a", "10", "0"), p("b", "5", "2")], D(15), D(10)),
    (None, [p("a", "10", "-1")], D(10), None),
    (None, [p("a", "10", "abc")], D(10), None),
    # unpriced products add nothing; none priced: null
    (None, [p("a", None, "2")], None, None),
    (None, [p("a", None, "2"), p("b", "4", "2")], D(4), D(8)),
    (None, [None, p("a", "3")], D(3), D(3)),
    (None, [p("a", "abc"), p("b", "4")], D(4), D(4)),  # the event is invalid_amount anyway
    (None, [p(None, "3"), p("", "2")], D(5), D(5)),  # value does not need product ids
    (None, [p("a", "-5"), p("b", "10")], D(5), D(5)),
    (None, [p("a", "1e3", "1E+1")], D(1000), D(10000)),
]


def test_event_value_in_both_modes(spark):
    df = spark.createDataFrame(
        VALUE_ROWS,
        f"total string, products {PRODUCTS}, sum_price decimal(38,10), "
        "price_x_quantity decimal(38,10)",
    )
    total, products = F.col("total"), F.col("products")
    df = df.select(
        "*",
        value_of(total, products).alias("actual_default"),
        value_of(total, products, "sum_price").alias("actual_sum_price"),
        value_of(total, products, "price_x_quantity").alias("actual_price_x_quantity"),
    )
    assert df.schema["actual_sum_price"].dataType == MONEY
    assert df.schema["actual_price_x_quantity"].dataType == MONEY
    assert_column_equality(df, "actual_default", "sum_price")
    assert_column_equality(df, "actual_sum_price", "sum_price")
    assert_column_equality(df, "actual_price_x_quantity", "price_x_quantity")


def test_event_value_sum_overflow_does_not_fail_the_job(spark):
    df = spark.createDataFrame(
        [(None, [p("a", "9e27"), p("b", "9e27")])], f"total string, products {PRODUCTS}"
    )
    row = df.select(value_of(F.col("total"), F.col("products")).alias("v")).first()
    assert row["v"] is None  # out of range: no value, as udfs/numbers.py does for one number


def test_event_value_price_x_quantity_overflow_does_not_fail_the_job(spark):
    df = spark.createDataFrame(
        [(None, [p("a", "1e15", "1e15")])], f"total string, products {PRODUCTS}"
    )
    row = df.select(
        value_of(F.col("total"), F.col("products"), "price_x_quantity").alias("v")
    ).first()
    assert row["v"] is None


def test_sendable_value_is_a_positive_double(spark):
    rows = [
        (None, None),
        (D(0), None),
        (D("-0.01"), None),
        (D(-10), None),
        (D("0.0000000001"), 1e-10),
        (D("0.3"), 0.3),
        (D("25.5"), 25.5),
        (D("1234567.89"), 1234567.89),
    ]
    df = spark.createDataFrame(rows, "value decimal(38,10), expected double").withColumn(
        "actual", sendable_value(F.col("value"))
    )
    assert df.schema["actual"].dataType.simpleString() == "double"
    assert_column_equality(df, "actual", "expected")


def test_currency_code_and_is_invalid_currency(spark):
    # raw, code (default USD), code (default "eur"), invalid
    rows = [
        (None, "USD", "EUR", False),
        ("usd", "USD", "USD", False),
        ("EUR", "EUR", "EUR", False),
        ("Jpy", "JPY", "JPY", False),
        (" gbp\u00a0", "GBP", "GBP", False),
        ("\tcad\n\u3000", "CAD", "CAD", False),
        # present but not three letters: invalid (the event is skipped)
        ("US", "US", "US", True),
        ("USDX", "USDX", "USDX", True),
        ("U S", "U S", "U S", True),
        ("12A", "12A", "12A", True),
        ("$", "$", "$", True),
        ("ÜSD", "ÜSD", "ÜSD", True),
        ("", "", "", True),  # blank is present, not missing
        ("  ", "", "", True),
    ]
    df = spark.createDataFrame(
        rows, "raw string, usd string, eur string, invalid boolean"
    ).select(
        "*",
        currency_code(F.col("raw"), "USD").alias("actual_usd"),
        currency_code(F.col("raw"), "eur").alias("actual_eur"),
        is_invalid_currency(F.col("raw")).alias("actual_invalid"),
    )
    assert_column_equality(df, "actual_usd", "usd")
    assert_column_equality(df, "actual_eur", "eur")
    assert_column_equality(df, "actual_invalid", "invalid")


# products, legacy contents as JSON (capi: the same with "item_price")
CONTENTS_ROWS = [
    (None, None),
    ([], None),
    ([p("sku-1", "10.5", "2")], '[{"id":"sku-1","quantity":2.0,"price":10.5}]'),
    ([p(" sku-2\u00a0", " 3 ", None)], '[{"id":"sku-2","quantity":1.0,"price":3.0}]'),
    ([p("a", None, "1")], '[{"id":"a","quantity":1.0}]'),  # price omitted when null
    ([p("a", "abc", "1")], '[{"id":"a","quantity":1.0}]'),  # (and when not a number)
    ([p("g", "1e1", "2e0")], '[{"id":"g","quantity":2.0,"price":10.0}]'),
    # products without an id are dropped
    ([p(None, "1", "1"), p("", "1", "1"), p(" \u00a0\u3000", "1", "1")], None),
    ([None, p("e", "2", None)], '[{"id":"e","quantity":1.0,"price":2.0}]'),
    # so are products with a quantity that is 0, negative or not a number
    ([p("a", "1", "0"), p("b", "1", "-2"), p("c", "1", "abc"), p("d", "1", "1.5")],
     '[{"id":"d","quantity":1.5,"price":1.0}]'),
    ([p("a", "1", "0")], None),
    ([p("x", "5", "1"), p("y", None, "3")],
     '[{"id":"x","quantity":1.0,"price":5.0},{"id":"y","quantity":3.0}]'),
]


def test_contents_in_both_dialects(spark):
    rows = [
        (products, legacy, legacy.replace('"price":', '"item_price":') if legacy else None)
        for products, legacy in CONTENTS_ROWS
    ]
    df = spark.createDataFrame(rows, f"products {PRODUCTS}, legacy string, capi string").select(
        "*",
        F.to_json(contents(F.col("products"), "offline_conversions")).alias("actual_legacy"),
        F.to_json(contents(F.col("products"), "capi")).alias("actual_capi"),
    )
    assert_column_equality(df, "actual_legacy", "legacy")
    assert_column_equality(df, "actual_capi", "capi")


def test_product_text_takes_json_strings_only(spark):
    rows = [
        ('" Trail Runner Shoe "', "Trail Runner Shoe"), ('"\\u00a0Acme\\t"', "Acme"),
        ('"12"', "12"), ('"Café \\"Crème\\""', 'Café "Crème"'), ('"抹茶"', "抹茶"),
        ('""', None), ('"  "', None), ("null", None),
        ("12", None), ("12.5", None), ("true", None), ('{"en": "Shoe"}', None), ('["a"]', None),
    ]
    df = spark.createDataFrame(rows, "json string, expected string")
    df = df.withColumn("actual", product_text(F.parse_json(F.col("json"))))
    assert_column_equality(df, "actual", "expected")
    df = spark.createDataFrame([(None, None)], "json string, expected string")
    df = df.withColumn("actual", product_text(F.parse_json(F.col("json"))))  # SQL null
    assert_column_equality(df, "actual", "expected")


# Products as the raw JSON of a batch, read with the reader's schema (name, brand and category
# are variants there), and the rich capi contents they give (SPEC §9).
RICH_ROWS = [
    ('[{"id": "a", "name": " Trail Runner Shoe ", "brand": "Acme", "category": "Footwear",'
     ' "price": 10, "quantity": 2}]',
     '[{"id":"a","quantity":2.0,"item_price":10.0,"title":"Trail Runner Shoe","brand":"Acme",'
     '"category":"Footwear"}]'),
    # not strings: a number, a boolean, an object, null; blank text: each is left out
    ('[{"id": "b", "name": 12345, "brand": true, "category": {"x": 1}},'
     ' {"id": "c", "name": "", "brand": "  ", "category": null},'
     ' {"id": "d", "name": "12345", "brand": ["Acme"], "category": "Tools"}]',
     '[{"id":"b","quantity":1.0},{"id":"c","quantity":1.0},'
     '{"id":"d","quantity":1.0,"title":"12345","category":"Tools"}]'),
    ('[{"name": "no id", "brand": "Acme"}]', None),
    ("[]", None),
]


def test_rich_contents_carry_title_brand_category_only_as_non_empty_strings(spark):
    df = spark.createDataFrame(RICH_ROWS, "json string, expected string")
    products = F.from_json(F.col("json"), T.ArrayType(PRODUCT))
    df = df.select("*", F.to_json(contents(products, "capi", details=True)).alias("actual"),
                   F.to_json(contents(products, "capi")).alias("plain"),
                   F.to_json(contents(products, "offline_conversions")).alias("legacy"))
    assert_column_equality(df, "actual", "expected")
    for row in df.collect():  # without details (mparticle profile, legacy): §3's contents
        for text in (row["plain"], row["legacy"]):
            assert text is None or not any(k in text for k in ('"title"', '"brand"',
                                                               '"category"'))
    assert df.where(F.col("plain").isNotNull()).count() == 2


BATCH = '{"b":"8521463789","r":"req-1"}'
DIGEST = sha("a raw line")


def test_event_id_prefers_source_message_id_then_event_id_then_a_digest(spark):
    rows = [
        ("m-1", "e-1", BATCH, 0, "m-1"),
        (" m-1\u00a0", None, BATCH, 0, "m-1"),
        (None, "e-1", BATCH, 0, "e-1"),
        ("", "-6879785498725781426", BATCH, 0, "-6879785498725781426"),
        ("  \u3000", "e-1", BATCH, 0, "e-1"),
        # neither: a digest of the batch identity and the position, stable and distinct
        (None, None, BATCH, 3, sha(f"{BATCH}#3")),
        ("", " ", BATCH, 3, sha(f"{BATCH}#3")),
        (None, None, BATCH, 4, sha(f"{BATCH}#4")),
        (None, None, DIGEST, 3, sha(f"{DIGEST}#3")),
    ]
    df = spark.createDataFrame(
        rows, "smid string, eid string, batch string, position int, expected string"
    ).withColumn(
        "actual", event_id(F.col("smid"), F.col("eid"), F.col("batch"), F.col("position"))
    )
    assert_column_equality(df, "actual", "expected")


def test_batch_identity(spark):
    rows = [
        (None, None, DIGEST, DIGEST),  # no ids: the line's digest
        ("8521463789", "req-1", DIGEST, '{"b":"8521463789","r":"req-1"}'),
        # one id: the other is left out, and the key names keep the two apart
        ("x", None, DIGEST, '{"b":"x"}'),
        (None, "x", DIGEST, '{"r":"x"}'),
        # blanks count as missing; values are trimmed
        ("", " \u00a0", DIGEST, DIGEST),
        (" 42 ", "\u3000", DIGEST, '{"b":"42"}'),
        ('a"b', None, DIGEST, '{"b":"a\\"b"}'),
    ]
    df = spark.createDataFrame(
        rows, "batch_id string, request_id string, digest string, expected string"
    ).withColumn(
        "actual", batch_identity(F.col("batch_id"), F.col("request_id"), F.col("digest"))
    )
    assert_column_equality(df, "actual", "expected")


def test_batch_identity_does_not_depend_on_ignore_null_fields(spark):
    key = "spark.sql.jsonGenerator.ignoreNullFields"
    df = spark.createDataFrame([(None, None, DIGEST)], "b string, r string, digest string")
    spark.conf.set(key, "false")
    try:
        row = df.select(
            batch_identity(F.col("b"), F.col("r"), F.col("digest")).alias("id")
        ).first()
    finally:
        spark.conf.unset(key)
    assert row["id"] == DIGEST
