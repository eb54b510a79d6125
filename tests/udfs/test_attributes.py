"""udfs/attributes.py: reserved user attributes, identities and CCPA consent (SPEC §1, §4, §8,
§9).

Inputs are the raw JSON texts a batch carries. ``user_attributes`` is parsed here with
``from_json`` exactly as the reader does, because key order matters (the first of the case
variants wins) and a Python dict given to ``createDataFrame`` does not keep its order.
"""

from __future__ import annotations

import pytest
from chispa import assert_column_equality
from pyspark.sql import functions as F

from udfs.attributes import (
    ccpa_opted_out,
    identity_entries,
    identity_of_type,
    identity_types_for,
    lookup_identity,
    lookup_reserved,
    reserved_attribute,
    reserved_entries,
)

# user_attributes JSON, $firstname, $city, $prénom (a reserved name with a non-ASCII letter)
ATTRIBUTE_ROWS = [
    (None, None, None, None),  # no user_attributes at all: a null map
    ("{}", None, None, None),
    ('{"$firstname": "Ann"}', "Ann", None, None),
    ('{"$FirstName": "Ann", "$City": "Oslo"}', "Ann", "Oslo", None),
    ('{"$FIRSTNAME": "Ann", "$CITY": "Oslo"}', "Ann", "Oslo", None),
    # case variants: the first in the batch's JSON wins, whatever its casing
    ('{"$FIRSTNAME": "Upper", "$firstname": "lower"}', "Upper", None, None),
    ('{"$firstname": "lower", "$FIRSTNAME": "Upper"}', "lower", None, None),
    ('{"$lastname": "L", "$FirstName": "mixed", "$firstname": "x", "$FIRSTNAME": "y"}',
     "mixed", None, None),
    # a list value (raw JSON text) or a null is absent: the next casing counts
    ('{"$firstname": ["a", "b"], "$FirstName": "Ann"}', "Ann", None, None),
    ('{"$FIRSTNAME": [], "$firstname": "Ann"}', "Ann", None, None),
    ('{"$firstname": null, "$FIRSTNAME": "Ann"}', "Ann", None, None),
    ('{"$firstname": ["a"]}', None, None, None),
    ('{"$firstname": null}', None, None, None),
    ('{"$firstname": [], "$FirstName": null, "$FIRSTNAME": ["z"]}', None, None, None),
    # a string that merely starts with "[" is a value, not a list
    ('{"$firstname": "[not a list"}', "[not a list", None, None),
    # values come back as they are (normalization is the match keys' job)
    ('{"$firstname": "  Ann  "}', "  Ann  ", None, None),
    ('{"$firstname": 42}', "42", None, None),
    # other keys are not the reserved one
    ('{"firstname": "no dollar", "$first_name": "x", "$firstname ": "space"}', None, None, None),
    # non-ASCII keys: root-locale lower case (İ is i + U+0307, not i) ...
    ('{"$F\u0130RSTNAME": "dotted", "$C\u0130TY": "x", "$City": "Oslo"}', None, "Oslo", None),
    ('{"$c\u0131ty": "dotless"}', None, None, None),  # dotless i is not i
    # ... and a reserved name with a non-ASCII letter matches its upper-case key
    ('{"$PRÉNOM": "Zoë", "$prénom": "second"}', None, None, "Zoë"),
    ('{"$Prénom": ["x"], "$prénom": "Zoë"}', None, None, "Zoë"),
]


def test_reserved_attribute(spark):
    df = spark.createDataFrame(
        ATTRIBUTE_ROWS, "attrs string, firstname string, city string, prenom string"
    )
    attrs = F.from_json(F.col("attrs"), "map<string,string>")
    df = df.select(
        "*",
        reserved_attribute(attrs, "$firstname").alias("actual_firstname"),
        reserved_attribute(attrs, "$city").alias("actual_city"),
        reserved_attribute(attrs, "$Prénom").alias("actual_prenom"),
    )
    assert_column_equality(df, "actual_firstname", "firstname")
    assert_column_equality(df, "actual_city", "city")
    assert_column_equality(df, "actual_prenom", "prenom")


OUTBOUND = (
    '[{"identity_type": "email", "identity": "a@x.com", "timestamp_unixtime_ms": "1700000000000",'
    ' "created_this_batch": false}, {"identity_type": "customer_id", "identity": "C1"}]'
)
# raw user_identities, Email Type "email", Email Type "customer_id", Email Type "other"
IDENTITY_ROWS = [
    (None, None, None, None),
    # inbound object
    ('{"email": "a@x.com", "customer_id": "C1", "other": "O"}', "a@x.com", "C1", "O"),
    ('{"customerid": "C2"}', None, "C2", None),
    ('{"customer_id": null, "customerid": "C2"}', None, "C2", None),
    ('{"customerid": "C2", "customer_id": "C1"}', None, "C2", None),  # first in JSON order
    ('{"email": null, "other": null}', None, None, None),
    ('{"customer_id": 12345678901234567890}', None, "12345678901234567890", None),
    ('  {"email": "lead@x.com"}', "lead@x.com", None, None),
    ("{}", None, None, None),
    # outbound array
    (OUTBOUND, "a@x.com", "C1", None),
    ('[{"identity_type": "email", "identity": null},'
     ' {"identity_type": "email", "identity": "second@x.com"}]', "second@x.com", None, None),
    ('[{"identity_type": "customerid", "identity": "C2"}]', None, "C2", None),
    ('[{"identity_type": "other", "identity": "O"}, {"identity_type": "email"}]',
     None, None, "O"),
    ("[]", None, None, None),
    # garbage
    ("", None, None, None),
    ("   ", None, None, None),
    ("not json", None, None, None),
    ('"a@x.com"', None, None, None),
    ("null", None, None, None),
    ('{"email": "a@x.com"', None, None, None),  # truncated
    ("[1, 2]", None, None, None),
    ('[{"identity_type": "email", "identity": "a@x.com"}', None, None, None),  # truncated
]


def test_identity_of_type(spark):
    df = spark.createDataFrame(
        IDENTITY_ROWS, "raw string, email string, customer_id string, other string"
    )
    raw = F.col("raw")
    df = df.select(
        "*",
        identity_of_type(raw, identity_types_for("email")).alias("actual_email"),
        identity_of_type(raw, identity_types_for("customer_id")).alias("actual_customer_id"),
        identity_of_type(raw, identity_types_for("other")).alias("actual_other"),
    )
    assert_column_equality(df, "actual_email", "email")
    assert_column_equality(df, "actual_customer_id", "customer_id")
    assert_column_equality(df, "actual_other", "other")


@pytest.mark.parametrize(("setting", "types"), [
    ("email", ["email"]),
    (" Email ", ["email"]),
    ("customer_id", ["customer_id", "customerid"]),
    ("customerid", ["customer_id", "customerid"]),
    ("CUSTOMER_ID", ["customer_id", "customerid"]),
    ("other_id_2", ["other_id_2"]),
])
def test_identity_types_for(setting, types):
    assert identity_types_for(setting) == types


def _consent(consented: str) -> str:
    return '{"ccpa": {"data_sale_opt_out": {"consented": ' + consented + "}}}"


CONSENT_ROWS = [
    (None, False),
    (_consent("true"), True),
    ('{"gdpr": {"marketing": {"consented": false}}, "ccpa": {"data_sale_opt_out": '
     '{"consented": true, "timestamp_unixtime_ms": 1700000000000, "document": "d",'
     ' "location": "l", "hardware_id": "h"}}}', True),
    (_consent("false"), False),
    (_consent('"true"'), False),  # a string does not count (SPEC §8)
    (_consent('"TRUE"'), False),
    (_consent("1"), False),
    (_consent("null"), False),
    ('{"ccpa": {"data_sale_opt_out": {}}}', False),
    ('{"ccpa": {"data_sale_opt_out": [{"consented": true}]}}', False),
    ('{"ccpa": {}}', False),
    ('{"gdpr": {"data_sale_opt_out": {"consented": true}}}', False),
    ("{}", False),
    ("", False),
    ("garbage", False),
    ("[]", False),
    ('{"ccpa": {"data_sale_opt_out": {"consented": tru', False),  # truncated
]


def test_ccpa_opted_out_is_json_true_only_and_never_null(spark):
    df = spark.createDataFrame(CONSENT_ROWS, "raw string, expected boolean")
    df = df.withColumn("actual", ccpa_opted_out(F.col("raw")))
    assert_column_equality(df, "actual", "expected")


def test_reserved_attribute_without_a_caseless_prefix(spark):
    """A name whose first character has a case gets no ``startswith`` pre-check: every key is
    compared by its root-locale lower case, and the first casing still wins."""
    rows = [
        ('{"FirstName": "Ann", "firstname": "x"}', "Ann"),
        ('{"other": "y", "FIRSTNAME": null, "firstName": "Bo"}', "Bo"),
        ('{"$firstname": "dollar"}', None),
    ]
    df = spark.createDataFrame(rows, "attrs string, expected string").withColumn(
        "actual", reserved_attribute(F.from_json(F.col("attrs"), "map<string,string>"),
                                     "firstname"))
    assert_column_equality(df, "actual", "expected")


# raw user_identities; mobile_number, phone_number_2, phone_number_3, customer_id (+customerid)
PHONE_IDENTITY_ROWS = [
    (None, None, None, None, None),
    ('{"mobile_number": "+1 650 555 0100", "phone_number_2": "5550101",'
     ' "phone_number_3": "5550102", "customerid": "C9"}',
     "+1 650 555 0100", "5550101", "5550102", "C9"),
    ('{"phone_number_3": "3", "email": "a@x.com"}', None, None, "3", None),
    ('{"mobile_number": null, "phone_number_2": "  "}', None, "  ", None, None),
    ('[{"identity_type": "mobile_number", "identity": "+44 20 7946 0000",'
     ' "timestamp_unixtime_ms": "1", "created_this_batch": false},'
     ' {"identity_type": "phone_number_2", "identity": "2"},'
     ' {"identity_type": "customer_id", "identity": "C1"},'
     ' {"identity_type": "customerid", "identity": "C2"}]',
     "+44 20 7946 0000", "2", None, "C1"),
    ('[{"identity_type": "mobile_number", "identity": null},'
     ' {"identity_type": "mobile_number", "identity": "second"}]', "second", None, None, None),
    ('{"mobile_number": 16505550100}', "16505550100", None, None, None),  # JSON number: text
    ("garbage", None, None, None, None),
]


def test_identity_entries_parse_once_and_look_up_each_type_in_both_dialects(spark):
    df = spark.createDataFrame(
        PHONE_IDENTITY_ROWS, "raw string, mobile string, p2 string, p3 string, customer string")
    customer = identity_types_for("customer_id")
    wanted = ["mobile_number", "phone_number_2", "phone_number_3", *customer]
    df = df.withColumn("entries", identity_entries(F.col("raw"), wanted)).select(
        "*",
        lookup_identity(F.col("entries"), ["mobile_number"]).alias("actual_mobile"),
        lookup_identity(F.col("entries"), ["phone_number_2"]).alias("actual_p2"),
        lookup_identity(F.col("entries"), ["phone_number_3"]).alias("actual_p3"),
        lookup_identity(F.col("entries"), customer).alias("actual_customer"),
    )
    for name in ("mobile", "p2", "p3", "customer"):
        assert_column_equality(df, f"actual_{name}", name)
    # only the wanted types are kept
    kept = df.select(F.flatten(F.collect_list(F.col("entries.key")))).first()[0]
    assert set(kept) <= set(wanted) and "email" not in kept


def test_mobile_is_a_reserved_attribute_in_any_case(spark):
    rows = [
        ('{"$Mobile": "+1 650 555 0100"}', "+1 650 555 0100", None),
        ('{"$MOBILE": ["list"], "$mobile": "5550100", "$Zip": 94105}', "5550100", "94105"),
        ('{"$mobile": null, "$ZIP": "SW1A 1AA"}', None, "SW1A 1AA"),
        ('{"mobile": "no dollar"}', None, None),
    ]
    df = spark.createDataFrame(rows, "attrs string, mobile string, zip string")
    entries = reserved_entries(F.from_json(F.col("attrs"), "map<string,string>"),
                               ["$mobile", "$zip"])
    df = df.select("*", lookup_reserved(entries, "$mobile").alias("actual_mobile"),
                   lookup_reserved(entries, "$zip").alias("actual_zip"))
    assert_column_equality(df, "actual_mobile", "mobile")
    assert_column_equality(df, "actual_zip", "zip")
