"""udfs/payload.py: the JSON element sent to Meta, per dialect (SPEC §5, §6, §8).

Each payload DataFrame holds one literal row per case and is collected once per module; the
tests parse the JSON text with Python's ``json`` and compare dicts (plus a few checks on the
text itself, e.g. how quantities are printed).
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from chispa import assert_column_equality
from pyspark.sql import functions as F

from tests.helpers import NOW
from udfs.payload import (
    STANDARD_CUSTOM_DATA_KEYS,
    capi_payload,
    data_processing_options,
    legacy_payload,
    merge_json_objects,
    with_field,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


IDFA = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
H_EM, H_GE, H_FN, H_LN = sha("buyer@example.com"), sha("f"), sha("ann"), sha("lee")
H_CT, H_COUNTRY = sha("menlopark"), sha("us")
CUSTOM = {"store": "42", "note": 'café "quoted"\n', "value": "shadowed", "currency": "x",
          "contents": "y", "order_id": "z"}
DPO_OFF = {"data_processing_options": []}
DPO_US_CA = {"data_processing_options": ["LDU"], "data_processing_options_country": 1,
             "data_processing_options_state": 1000}

COMMON_FIELDS = (
    ("case", "string"), ("event_name", "string"), ("event_time", "bigint"),
    ("madid", "string"), ("fn", "string"), ("ln", "string"), ("ct", "string"),
    ("country", "string"), ("value", "double"), ("currency", "string"), ("order_id", "string"),
    ("custom", "map<string,string>"), ("ldu", "boolean"), ("us", "boolean"), ("ca", "boolean"),
)
EXTENDED_FIELDS = (("ph", "string"), ("st", "string"), ("zp", "string"),
                   ("external_id", "string"))
CAPI_FIELDS = (
    *COMMON_FIELDS, ("event_id", "string"), ("em", "string"), ("ge", "string"),
    ("contents", "array<struct<id:string,quantity:double,item_price:double>>"),
    *EXTENDED_FIELDS,
)
RICH_CAPI_FIELDS = (
    *COMMON_FIELDS, ("event_id", "string"), ("em", "string"), ("ge", "string"),
    ("contents", "array<struct<id:string,quantity:double,item_price:double,title:string,"
                 "brand:string,category:string>>"),
    *EXTENDED_FIELDS,
)
LEGACY_FIELDS = (
    *COMMON_FIELDS, ("email", "string"), ("gen", "string"),
    ("contents", "array<struct<id:string,quantity:double,price:double>>"),
    *EXTENDED_FIELDS,
)


def literal_df(spark, fields, cases: dict[str, dict]):
    """One literal row per case: every field null unless the case gives it."""
    schema = ", ".join(f"{name} {kind}" for name, kind in fields)
    rows = [tuple({"case": case, **given}.get(name) for name, _ in fields)
            for case, given in cases.items()]
    return spark.createDataFrame(rows, schema)


def _common_columns() -> dict:
    c = F.col
    return {
        "event_name": c("event_name"), "event_time": c("event_time"), "madid": c("madid"),
        "fn": c("fn"), "ln": c("ln"), "ct": c("ct"), "country": c("country"),
        "value": c("value"), "currency": c("currency"), "contents": c("contents"),
        "order_id": c("order_id"), "custom_attributes": c("custom"),
        "dpo": data_processing_options(c("ldu"), c("us"), c("ca")),
    }


ALL_KEYS = {"madid": IDFA, "fn": H_FN, "ln": H_LN, "ct": H_CT, "country": H_COUNTRY}

CAPI_CASES = {
    "full": {
        "event_name": "Purchase", "event_time": NOW, "event_id": "m-1", "em": H_EM, "ge": H_GE,
        **ALL_KEYS, "value": 25.5, "currency": "USD",
        "contents": [("sku-1", 2.0, 10.5), ("sku-2", 1.5, None)], "order_id": "T-1",
        "custom": CUSTOM, "ldu": True, "us": True, "ca": True,
    },
    "minimal": {
        "event_name": "AddToCart", "event_time": NOW, "event_id": "e-2", "madid": IDFA,
        "currency": "USD", "ldu": False, "us": True, "ca": True,
    },
    "reserved_names_not_sent": {
        "event_name": "ViewContent", "event_time": NOW, "event_id": "e-3", "em": H_EM,
        "currency": "EUR", "custom": {"value": "9", "currency": "attr", "contents": "c",
                                      "order_id": "o", "note": "n"},
        "ldu": True, "us": False, "ca": False,
    },
    "value_only": {
        "event_name": "AddToCart", "event_time": NOW, "event_id": "e-4", "em": H_EM,
        "value": 10.0, "currency": "EUR",
        "custom": {"value": "x", "currency": "y", "contents": "kept", "order_id": "kept too"},
        "ldu": True, "us": True, "ca": False,
    },
    "contents_only": {
        "event_name": "AddToCart", "event_time": NOW, "event_id": "e-5", "em": H_EM,
        "currency": "USD", "contents": [("a", 3.0, 2.0), ("b", 1.0, None)], "order_id": "T-9",
        "custom": {"contents": "dropped", "order_id": "dropped", "value": "kept",
                   "currency": "kept"},
        "ldu": True, "us": False, "ca": True,
    },
    "empty_custom": {
        "event_name": "AddToCart", "event_time": NOW, "event_id": "e-6", "em": H_EM,
        "custom": {}, "ldu": False,
    },
    "big_quantity": {
        "event_name": "AddToCart", "event_time": NOW, "event_id": "e-7", "em": H_EM,
        "contents": [("a", 1e7, None)], "ldu": False,
    },
    "standard_names": {
        "event_name": "AddToCart", "event_time": NOW, "event_id": "e-8", "em": H_EM,
        "custom": {**{k: "text" for k in STANDARD_CUSTOM_DATA_KEYS},
                   "Value": "kept: names match case-sensitively", "value ": "kept too",
                   "store": "42"},
        "ldu": False,
    },
    "null": {},
}

LEGACY_CASES = {
    "full": {
        "event_name": "Purchase", "event_time": NOW, "email": H_EM, "gen": H_GE, **ALL_KEYS,
        "madid": sha(IDFA), "value": 25.5, "currency": "USD",
        "contents": [("sku-1", 2.0, 10.5), ("sku-2", 1.5, None)], "order_id": "T-1",
        "custom": CUSTOM, "ldu": True, "us": True, "ca": True,
    },
    "no_attributes": {
        "event_name": "AddToCart", "event_time": NOW, "email": H_EM, "currency": "USD",
        "ldu": False, "us": True, "ca": True,
    },
    "empty_attributes": {
        "event_name": "ViewContent", "event_time": NOW, "email": H_EM, "value": 3.0,
        "currency": "EUR", "contents": [("a", 1.0, 3.0)], "custom": {},
        "ldu": True, "us": False, "ca": False,
    },
    "standard_names": {
        "event_name": "AddToCart", "event_time": NOW, "email": H_EM,
        "custom": {k: "text" for k in STANDARD_CUSTOM_DATA_KEYS}, "ldu": False,
    },
    "null": {},
}


@pytest.fixture(scope="module")
def capi(spark) -> dict[str, str]:
    """capi payloads as the ``mparticle`` profile builds them (no §9 argument given)."""
    df = literal_df(spark, CAPI_FIELDS, CAPI_CASES)
    c = F.col
    payload = capi_payload(event_id=c("event_id"), em=c("em"), ge=c("ge"), **_common_columns())
    return {r["case"]: r["payload"] for r in df.select("case", payload.alias("payload")).collect()}


@pytest.fixture(scope="module")
def legacy(spark) -> dict[str, str]:
    df = literal_df(spark, LEGACY_FIELDS, LEGACY_CASES)
    c = F.col
    payload = legacy_payload(email=c("email"), gen=c("gen"), **_common_columns())
    return {r["case"]: r["payload"] for r in df.select("case", payload.alias("payload")).collect()}


H_PH, H_ST, H_ZP, H_EXT = sha("16505550100"), sha("ca"), sha("94105"), sha("C-1")
EXTENDED_CASES = {
    "all_keys": {
        "event_name": "Purchase", "event_time": NOW, "event_id": "x-1", "em": H_EM,
        "ph": H_PH, "st": H_ST, "zp": H_ZP, "external_id": H_EXT, "value": 5.0,
        "currency": "USD", "ldu": False,
    },
    "only_extended_keys": {
        "event_name": "AddToCart", "event_time": NOW, "event_id": "x-2", "ph": H_PH,
        "external_id": H_EXT, "ldu": False,
    },
    "no_keys": {"event_name": "AddToCart", "event_time": NOW, "event_id": "x-3", "ldu": False},
}
RICH_CASES = {
    "rich": {
        "event_name": "Purchase", "event_time": NOW, "event_id": "r-1", "em": H_EM,
        "value": 5.0, "currency": "USD", "order_id": "T-1",
        "contents": [("a", 1.0, 5.0, "Trail Runner Shoe", "Acme", "Footwear/Running"),
                     ("b", 2.0, None, None, "Acme", None), ("c", 1.0, None, None, None, None)],
        "custom": {"content_type": "mine", "store": "42"}, "ldu": False,
    },
    "rich_without_contents": {
        "event_name": "AddToCart", "event_time": NOW, "event_id": "r-2", "em": H_EM,
        "custom": {"content_type": "mine", "store": "42"}, "ldu": False,
    },
}


def _extended_columns() -> dict:
    c = F.col
    return {"ph": c("ph"), "st": c("st"), "zp": c("zp"), "external_id": c("external_id")}


@pytest.fixture(scope="module")
def capi_extended(spark) -> dict[str, str]:
    c = F.col
    out = {}
    for fields, cases, content_type in ((CAPI_FIELDS, EXTENDED_CASES, None),
                                        (RICH_CAPI_FIELDS, RICH_CASES, F.lit("product"))):
        df = literal_df(spark, fields, cases)
        payload = capi_payload(event_id=c("event_id"), em=c("em"), ge=c("ge"),
                               content_type=content_type, **_extended_columns(),
                               **_common_columns())
        out.update({r["case"]: r["payload"]
                    for r in df.select("case", payload.alias("payload")).collect()})
    return out


@pytest.fixture(scope="module")
def legacy_extended(spark) -> dict[str, str]:
    cases = {case: {("email" if k == "em" else k): v for k, v in given.items()}
             for case, given in EXTENDED_CASES.items()}
    df = literal_df(spark, LEGACY_FIELDS, cases)
    c = F.col
    payload = legacy_payload(email=c("email"), gen=c("gen"), phone=c("ph"), st=c("st"),
                             zip_code=c("zp"), extern_id=c("external_id"), **_common_columns())
    return {r["case"]: r["payload"] for r in df.select("case", payload.alias("payload")).collect()}


# ----- capi ------------------------------------------------------------------------------------
def test_capi_full_event(capi):
    assert json.loads(capi["full"]) == {
        "event_name": "Purchase", "event_time": NOW, "event_id": "m-1",
        "action_source": "physical_store",
        "user_data": {"em": [H_EM], "madid": IDFA, "ge": H_GE, "fn": H_FN, "ln": H_LN,
                      "ct": H_CT, "country": H_COUNTRY},
        **DPO_US_CA,
        "custom_data": {
            "value": 25.5, "currency": "USD",
            "contents": [{"id": "sku-1", "quantity": 2, "item_price": 10.5},
                         {"id": "sku-2", "quantity": 1.5}],
            "order_id": "T-1",
            # the reserved keys are sent, so the custom attributes named like them are not
            "store": "42", "note": 'café "quoted"\n',
        },
    }


def test_capi_em_is_a_one_element_list_and_other_keys_strings(capi):
    user_data = json.loads(capi["full"])["user_data"]
    assert user_data.pop("em") == [H_EM]
    assert all(type(v) is str for v in user_data.values())


def test_capi_null_keys_are_omitted(capi):
    for case in CAPI_CASES:
        assert "null" not in capi[case], case
    assert json.loads(capi["minimal"]) == {
        "event_name": "AddToCart", "event_time": NOW, "event_id": "e-2",
        "action_source": "physical_store", "user_data": {"madid": IDFA}, **DPO_OFF,
    }
    assert json.loads(capi["null"]) == {
        "action_source": "physical_store", "user_data": {}, **DPO_OFF,
    }


def test_capi_currency_only_with_value(capi):
    assert json.loads(capi["value_only"])["custom_data"]["currency"] == "EUR"
    assert json.loads(capi["full"])["custom_data"]["currency"] == "USD"
    # a currency without a value is not sent (nor a custom attribute "currency": SPEC §8)
    assert "custom_data" not in json.loads(capi["minimal"])
    assert "currency" not in json.loads(capi["contents_only"])["custom_data"]
    assert "currency" not in json.loads(capi["reserved_names_not_sent"])["custom_data"]
    assert "currency" not in json.loads(capi["null"])


def test_capi_custom_attribute_named_like_a_standard_parameter_is_never_sent(capi):
    # SPEC §8: whether or not the job sends that parameter itself
    assert json.loads(capi["reserved_names_not_sent"])["custom_data"] == {"note": "n"}
    assert json.loads(capi["value_only"])["custom_data"] == {"value": 10.0, "currency": "EUR"}
    assert json.loads(capi["contents_only"])["custom_data"] == {
        "contents": [{"id": "a", "quantity": 3, "item_price": 2.0}, {"id": "b", "quantity": 1}],
        "order_id": "T-9",
    }
    assert json.loads(capi["standard_names"])["custom_data"] == {
        "Value": "kept: names match case-sensitively", "value ": "kept too", "store": "42",
    }


def test_capi_without_custom_data_sends_none(capi):
    assert "custom_data" not in json.loads(capi["empty_custom"])
    assert "custom_data" not in json.loads(capi["minimal"])


def test_capi_data_processing_options(capi):
    def dpo(case):
        return {k: v for k, v in json.loads(capi[case]).items()
                if k.startswith("data_processing_options")}

    assert dpo("full") == DPO_US_CA
    assert dpo("minimal") == DPO_OFF  # LDU does not apply: [] and no country/state
    assert dpo("reserved_names_not_sent") == {
        "data_processing_options": ["LDU"], "data_processing_options_country": 0,
        "data_processing_options_state": 0,
    }
    assert dpo("value_only")["data_processing_options_state"] == 0
    assert dpo("contents_only")["data_processing_options_country"] == 0


def test_capi_whole_quantities_are_integers(capi):
    assert '"quantity":2,"item_price":10.5' in capi["full"]
    assert '"quantity":1.5}' in capi["full"]
    assert '"quantity":3,"item_price":2.0' in capi["contents_only"]
    assert '"quantity":1}' in capi["contents_only"]
    for case in ("full", "contents_only"):
        assert not re.search(r'"quantity":-?[0-9]+\.0[,}]', capi[case]), case


def test_capi_large_whole_quantity_is_a_valid_json_number(capi):
    # to_json prints doubles >= 1e7 in exponent form ("1.0E7"): still a JSON number equal to
    # the quantity (Meta's quantities are far smaller in practice)
    [entry] = json.loads(capi["big_quantity"])["custom_data"]["contents"]
    assert entry["quantity"] == 10_000_000


# ----- legacy ----------------------------------------------------------------------------------
def test_legacy_full_event(legacy):
    assert json.loads(legacy["full"]) == {
        "match_keys": {"email": H_EM, "madid": sha(IDFA), "gen": H_GE, "fn": H_FN, "ln": H_LN,
                       "ct": H_CT, "country": H_COUNTRY},
        "event_name": "Purchase", "event_time": NOW, "currency": "USD", "value": 25.5,
        "contents": [{"id": "sku-1", "quantity": 2, "price": 10.5},
                     {"id": "sku-2", "quantity": 1.5}],
        "order_id": "T-1",
        **DPO_US_CA,
        "custom_data": CUSTOM,  # legacy: all attributes, reserved-looking names included
    }
    assert '"quantity":2,"price":10.5' in legacy["full"]


def test_legacy_match_keys_are_strings(legacy):
    assert all(type(v) is str for v in json.loads(legacy["full"])["match_keys"].values())


def test_legacy_custom_data_is_an_empty_object_without_attributes(legacy):
    assert json.loads(legacy["no_attributes"]) == {
        "match_keys": {"email": H_EM}, "event_name": "AddToCart", "event_time": NOW,
        **DPO_OFF, "custom_data": {},
    }
    assert json.loads(legacy["empty_attributes"]) == {
        "match_keys": {"email": H_EM}, "event_name": "ViewContent", "event_time": NOW,
        "currency": "EUR", "value": 3.0, "contents": [{"id": "a", "quantity": 1, "price": 3.0}],
        "data_processing_options": ["LDU"], "data_processing_options_country": 0,
        "data_processing_options_state": 0, "custom_data": {},
    }
    assert json.loads(legacy["null"]) == {"match_keys": {}, **DPO_OFF, "custom_data": {}}
    for case in LEGACY_CASES:
        assert "null" not in legacy[case], case


def test_legacy_custom_data_keeps_attributes_named_like_capi_parameters(legacy):
    # SPEC §8's rule is about capi: the legacy custom_data is the custom attributes unchanged
    assert json.loads(legacy["standard_names"])["custom_data"] == {
        k: "text" for k in STANDARD_CUSTOM_DATA_KEYS}


def test_standard_custom_data_names_are_spec_8s():
    assert STANDARD_CUSTOM_DATA_KEYS == (
        "value", "net_revenue", "currency", "content_name", "content_category", "content_ids",
        "contents", "content_type", "order_id", "predicted_ltv", "num_items", "status",
        "search_string", "delivery_category", "item_number")


# ----- SPEC §9 keys and rich contents -------------------------------------------------------
def test_capi_extended_keys(capi_extended):
    p = json.loads(capi_extended["all_keys"])
    assert p["user_data"] == {"em": [H_EM], "ph": [H_PH], "st": H_ST, "zp": H_ZP,
                              "external_id": H_EXT}
    assert json.loads(capi_extended["only_extended_keys"])["user_data"] == {
        "ph": [H_PH], "external_id": H_EXT}
    assert json.loads(capi_extended["no_keys"])["user_data"] == {}
    assert '"user_data":{"em":["' + H_EM + '"],"ph":["' + H_PH + '"],"st":"' in \
        capi_extended["all_keys"]  # §4's keys first, then §9's


def test_legacy_extended_keys_are_strings(legacy_extended):
    assert json.loads(legacy_extended["all_keys"])["match_keys"] == {
        "email": H_EM, "phone": H_PH, "st": H_ST, "zip": H_ZP, "extern_id": H_EXT}
    assert json.loads(legacy_extended["only_extended_keys"])["match_keys"] == {
        "phone": H_PH, "extern_id": H_EXT}


def test_capi_rich_contents_and_content_type(capi_extended):
    cd = json.loads(capi_extended["rich"])["custom_data"]
    assert cd == {
        "value": 5.0, "currency": "USD",
        "contents": [{"id": "a", "quantity": 1, "item_price": 5.0, "title": "Trail Runner Shoe",
                      "brand": "Acme", "category": "Footwear/Running"},
                     {"id": "b", "quantity": 2, "brand": "Acme"}, {"id": "c", "quantity": 1}],
        "order_id": "T-1", "content_type": "product", "store": "42",
    }
    assert capi_extended["rich"].count('"content_type"') == 1  # the attribute is not sent
    # no contents: no content_type (and the attribute named so is still not sent)
    assert json.loads(capi_extended["rich_without_contents"])["custom_data"] == {"store": "42"}


# ----- JSON text helpers -------------------------------------------------------------------------
def test_merge_json_objects(spark):
    rows = [
        (None, None, None),
        (None, '{"b":2}', None),
        ('{"a":1}', None, None),
        ("{}", "{}", "{}"),
        ('{"a":1}', "{}", '{"a":1}'),
        ("{}", '{"b":2}', '{"b":2}'),
        ('{"a":1}', '{"b":"x"}', '{"a":1,"b":"x"}'),
        ('{"a":{"c":[1]},"d":null}', '{"b":[{"e":"}"}]}',
         '{"a":{"c":[1]},"d":null,"b":[{"e":"}"}]}'),
    ]
    df = spark.createDataFrame(rows, "a string, b string, expected string").withColumn(
        "actual", merge_json_objects(F.col("a"), F.col("b"))
    )
    assert_column_equality(df, "actual", "expected")
    for *_, text in rows:
        if text is not None:
            json.loads(text)


def test_with_field(spark):
    rows = [
        (None, None, None),
        ("{}", None, "{}"),
        ('{"a":1}', None, '{"a":1}'),
        ("{}", "1", '{"x":1}'),
        ('{"a":1}', '"s"', '{"a":1,"x":"s"}'),
        ('{"a":1}', '{"b":[]}', '{"a":1,"x":{"b":[]}}'),
        ('{"a":{}}', "[]", '{"a":{},"x":[]}'),
    ]
    df = spark.createDataFrame(rows, "obj string, value string, expected string").withColumn(
        "actual", with_field(F.col("obj"), "x", F.col("value"))
    )
    assert_column_equality(df, "actual", "expected")


def test_data_processing_options(spark):
    ldu = '{"data_processing_options":["LDU"],'
    rows = [
        (None, None, None, '{"data_processing_options":[]}'),
        (False, True, True, '{"data_processing_options":[]}'),
        (False, False, False, '{"data_processing_options":[]}'),
        (True, True, True,
         ldu + '"data_processing_options_country":1,"data_processing_options_state":1000}'),
        (True, True, False,
         ldu + '"data_processing_options_country":1,"data_processing_options_state":0}'),
        (True, False, True,
         ldu + '"data_processing_options_country":0,"data_processing_options_state":1000}'),
        (True, False, False,
         ldu + '"data_processing_options_country":0,"data_processing_options_state":0}'),
        (True, None, None,
         ldu + '"data_processing_options_country":0,"data_processing_options_state":0}'),
    ]
    df = spark.createDataFrame(
        rows, "applies boolean, us boolean, ca boolean, expected string"
    ).withColumn(
        "actual",
        F.to_json(F.struct(*data_processing_options(F.col("applies"), F.col("us"), F.col("ca")))),
    )
    assert_column_equality(df, "actual", "expected")
