"""The mapping rules of SPEC §2-§8, end to end through the native transform, in both dialects."""

from __future__ import annotations

import json

import pytest

from jobs.config import load_config
from jobs.conversion.read import good_batches, parse_batches
from jobs.conversion.transform import (
    classified_events,
    to_payloads,
    with_payloads,
)
from tests.helpers import EMAIL, NOW, T_MS, batch, commerce, sha


def run(spark, lines, dialect="capi", **mapping):
    config = load_config(None, {"input": ["x"], "dialect": dialect, "dry_run": True,
                                **{f"mapping.{k}": v for k, v in mapping.items()}})
    df = spark.createDataFrame([(line, "file:/dump.txt") for line in lines],
                               "value string, source_file string")
    parsed = parse_batches(df)
    classified = classified_events(good_batches(parsed), config, NOW)
    with_p = with_payloads(classified, config)
    rows = with_p.orderBy("line_digest", "position").collect()
    out = []
    for r in rows:
        d = r.asDict()
        d["payload"] = json.loads(d["payload"]) if d["payload"] else None
        out.append(d)
    return out


def one(spark, line, dialect="capi", **mapping):
    rows = run(spark, [line], dialect, **mapping)
    assert len(rows) == 1
    return rows[0]


# ----- selection and names (SPEC §2) ----------------------------------------------------------
@pytest.mark.parametrize("dialect,expected", [
    ("capi", {"add_to_cart": "AddToCart", "add_to_wishlist": "AddToWishlist",
              "checkout": "InitiateCheckout", "purchase": "Purchase",
              "view_detail": "ViewContent"}),
    ("offline_conversions", {"add_to_cart": "AddToCart", "add_to_wishlist": "AddToWishList",
                             "checkout": "Checkout", "purchase": "Purchase",
                             "view_detail": "ViewContent"}),
])
def test_event_names_per_dialect(spark, dialect, expected):
    events = [commerce(a, source_message_id=a) for a in expected]
    events += [commerce(a, source_message_id=a) for a in
               ("refund", "remove_from_cart", "checkout_option", "click",
                "remove_from_wish_list")]
    events += [{"event_type": "screen_view", "data": {"screen_name": "x"}},
               {"event_type": "commerce_event", "data": {"promotion_action": {"action": "view"},
                                                         "timestamp_unixtime_ms": T_MS}}]
    rows = run(spark, [batch(events)], dialect)
    names = {r["event_id"]: r["event_name"] for r in rows if r["skip_reason"] is None}
    assert names == expected
    reasons = [r["skip_reason"] for r in rows if r["skip_reason"]]
    assert reasons == ["unmapped_action"] * 5 + ["non_commerce", "no_product_action"]
    for r in rows:
        if r["payload"]:
            assert r["payload"]["event_name"] == expected[r["event_id"]]


# ----- input dialects (SPEC §1) ---------------------------------------------------------------
def test_inbound_and_outbound_dialects_give_the_same_payload(spark):
    inbound = batch([commerce(ts=T_MS, event_id=77, source_message_id=None)],
                    identities={"customer_id": "c1", "email": EMAIL}, batch_id=5)
    outbound = batch([commerce(ts=str(T_MS), event_id="77", source_message_id=None)],
                     identities=[{"identity_type": "customer_id", "identity": "c1",
                                  "timestamp_unixtime_ms": "1", "created_this_batch": False},
                                 {"identity_type": "email", "identity": EMAIL}],
                     batch_id="5")
    a, b = run(spark, [inbound, outbound])
    assert a["payload"] == b["payload"]
    assert a["payload"]["event_id"] == "77"
    assert a["payload"]["user_data"]["em"] == [sha(EMAIL)]
    assert a["payload"]["event_time"] == T_MS // 1000


def test_big_int64_ids_are_kept_exactly(spark):
    row = one(spark, batch([commerce(event_id=-1586912177303106600, source_message_id=None)]))
    assert row["event_id"] == "-1586912177303106600"


# ----- capi payload shape (SPEC §5, §8) -------------------------------------------------------
def test_capi_payload_shape(spark):
    line = batch(
        [commerce(custom={"store": "42", "value": "shadowed", "channel": "pos"},
                  products=[{"id": "a", "price": "10.25", "quantity": "2"},
                            {"id": "b", "price": 15.25},
                            {"name": "no id", "price": 1}])],
        attributes={"$FirstName": "Ann", "$city": "Menlo Park", "$country": "US",
                    "$gender": "female"},
        device={"ios_advertising_id": "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
    )
    p = one(spark, line)["payload"]
    assert p["action_source"] == "physical_store"
    assert p["event_id"] == "m-1"
    assert p["user_data"] == {
        "em": [sha(EMAIL)], "madid": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
        "ge": sha("f"), "fn": sha("ann"),
        "ct": "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685",
        "country": "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",
    }
    cd = p["custom_data"]
    assert cd["value"] == 25.5 and cd["currency"] == "USD" and cd["order_id"] == "T-1"
    assert cd["contents"] == [{"id": "a", "quantity": 2, "item_price": 10.25},
                              {"id": "b", "quantity": 1, "item_price": 15.25}]
    assert cd["store"] == "42" and cd["channel"] == "pos"
    assert "shadowed" not in json.dumps(cd)  # the reserved value wins
    assert p["data_processing_options"] == []
    assert "data_processing_options_country" not in p


def test_capi_custom_attribute_named_like_a_standard_parameter_is_never_sent(spark):
    line = batch([commerce("add_to_cart", total=None, products=[],
                           custom={"value": "gold", "order_id": "X", "status": "vip",
                                   "content_type": "x", "Value": "kept", "note": "n"})])
    for profile in ("extended", "mparticle"):
        cd = one(spark, line, profile=profile)["payload"]["custom_data"]
        # no value is sent, yet the text "value" is not either (SPEC §8)
        assert cd == {"order_id": "T-1", "Value": "kept", "note": "n"}, profile


def test_legacy_payload_shape(spark):
    line = batch([commerce(custom={"store": "42"})],
                 attributes={"$LastName": "O'Brien-Smith"},
                 device={"android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d"})
    p = one(spark, line, "offline_conversions")["payload"]
    assert p["match_keys"] == {
        "email": sha(EMAIL), "madid": sha("38400000-8cf0-11bd-b23e-10b96e40000d"),
        "ln": sha("obriensmith"),
    }
    assert p["currency"] == "USD" and p["value"] == 25.5 and p["order_id"] == "T-1"
    assert p["contents"] == [{"id": "sku-1", "quantity": 1, "price": 25.5}]
    assert p["custom_data"] == {"store": "42"}
    assert "event_id" not in p and "user_data" not in p and "action_source" not in p


def test_legacy_custom_data_is_an_empty_object_without_attributes(spark):
    p = one(spark, batch([commerce()]), "offline_conversions")["payload"]
    assert p["custom_data"] == {}


# ----- match keys (SPEC §4, §8) ---------------------------------------------------------------
def test_mixed_case_reserved_keys_first_in_json_wins_and_lists_are_ignored(spark):
    line = batch([commerce()], attributes={"$FIRSTNAME": ["list", "ignored"],
                                           "$FirstName": "Émile", "$firstname": "Later"})
    assert one(spark, line)["payload"]["user_data"]["fn"] == sha("émile")


def test_unicode_whitespace_around_email(spark):
    line = batch([commerce()], identities={"email": "\u00a0\u3000 Foo.Bar@Example.COM\t\u202f"})
    assert one(spark, line)["payload"]["user_data"]["em"] == [
        "00a9fee7604744049b5f777d65021e214480af944b16c1580893c5c6eed2d45a"]


def test_names_with_punctuation_and_non_latin_scripts(spark):
    line = batch([commerce()], attributes={"$firstname": "Jean-Luc  O'Neil 3rd",
                                           "$lastname": "王 小明", "$city": "Санкт-Петербург"})
    ud = one(spark, line)["payload"]["user_data"]
    assert ud["fn"] == sha("jeanluconeilrd")
    assert ud["ln"] == sha("王小明")
    assert ud["ct"] == sha("санктпетербург")


def test_already_hashed_values_pass_through_lowercased(spark):
    h = sha("someone@example.com")
    line = batch([commerce()], identities={"email": f"  {h.upper()} "},
                 attributes={"$lastname": h.upper()})
    ud = one(spark, line)["payload"]["user_data"]
    assert ud["em"] == [h] and ud["ln"] == h


def test_all_zero_idfa_is_omitted_and_android_used_only_when_ios_blank(spark):
    zero = "00000000-0000-0000-0000-000000000000"
    gaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
    rows = run(spark, [
        batch([commerce(source_message_id="a")], identities={},
              attributes={"$city": "Oslo"},
              device={"ios_advertising_id": zero, "android_advertising_id": gaid}),
        batch([commerce(source_message_id="b")], identities={},
              attributes={"$city": "Oslo"},
              device={"ios_advertising_id": " ", "android_advertising_id": gaid}),
    ])
    by_id = {r["event_id"]: r["payload"]["user_data"] for r in rows}
    assert "madid" not in by_id["a"]  # an invalid (zero) IDFA is not replaced by the GAID
    assert by_id["b"]["madid"] == gaid


@pytest.mark.parametrize("raw", ["USA", "usa", "U.S.", "United States", " united-states "])
def test_alpha3_and_english_name_countries(spark, raw):
    line = batch([commerce()], attributes={"$country": raw})
    assert one(spark, line)["payload"]["user_data"]["country"] == sha("us")


def test_unknown_country_is_omitted(spark):
    line = batch([commerce()], attributes={"$country": "Atlantis"})
    assert "country" not in one(spark, line)["payload"]["user_data"]


def test_events_with_no_match_key_are_skipped(spark):
    line = batch([commerce()], identities={"email": "not-an-email"},
                 attributes={"$gender": "unknown", "$country": "Atlantis"},
                 device={"ios_advertising_id": "00000000-0000-0000-0000-000000000000"})
    row = one(spark, line)
    assert row["skip_reason"] == "no_match_keys" and row["payload"] is None


@pytest.mark.parametrize("dialect", ["capi", "offline_conversions"])
def test_email_type_other_forwards_only_hashes(spark, dialect):
    h = sha("x@y.z")
    rows = run(spark, [
        batch([commerce(source_message_id="a")],
              identities={"email": "a@b.co", "other": h.upper()}),
        batch([commerce(source_message_id="b")],
              identities=[{"identity_type": "other", "identity": "plain@text.com"}],
              attributes={"$city": "Oslo"}),
    ], dialect, email_identity_type="other")
    by_id = {r["event_id"]: r for r in rows}
    key = "user_data" if dialect == "capi" else "match_keys"
    em = "em" if dialect == "capi" else "email"
    got = by_id["a"]["payload"][key][em]
    assert got == ([h] if dialect == "capi" else h)
    assert em not in by_id["b"]["payload"][key]
    assert by_id["b"]["email_not_forwarded"] is True
    assert "plain@text.com" not in json.dumps(by_id["b"]["payload"])


def test_email_type_customer_id_matches_sdk_customerid(spark):
    h = sha("cust")
    line = batch([commerce()], identities={"customerid": h})
    assert one(spark, line, email_identity_type="customer_id")["payload"]["user_data"]["em"] \
        == [h]


# ----- amounts and currency (SPEC §3, §8) -----------------------------------------------------
def test_value_from_total_amount_or_sum_of_prices(spark):
    rows = run(spark, [batch([
        commerce(source_message_id="total", total="99.90"),
        commerce(source_message_id="sum", total=None,
                 products=[{"id": "a", "price": "0.1", "quantity": 3},
                           {"id": "b", "price": 0.2}]),
        commerce(source_message_id="string-total", total=" 12.5 "),
    ])])
    values = {r["event_id"]: r["payload"]["custom_data"]["value"] for r in rows}
    assert values == {"total": 99.9, "sum": 0.3, "string-total": 12.5}


def test_price_x_quantity_mode(spark):
    line = batch([commerce(total=None, products=[
        {"id": "a", "price": "2.5", "quantity": "4"}, {"id": "b", "price": 1, "quantity": 0}])])
    p = one(spark, line, value_mode="price_x_quantity")["payload"]
    assert p["custom_data"]["value"] == 10.0
    assert p["custom_data"]["contents"] == [{"id": "a", "quantity": 4, "item_price": 2.5}]


@pytest.mark.parametrize("total,prices", [("abc", [1]), ("", [1]), ("NaN", [1]),
                                          ("10", ["Infinity"]), (None, [True])])
def test_invalid_amounts_skip_the_event(spark, total, prices):
    line = batch([commerce(total=total, products=[{"id": "a", "price": p} for p in prices])])
    assert one(spark, line)["skip_reason"] == "invalid_amount"


def test_quantity_never_makes_an_amount_invalid(spark):
    line = batch([commerce(products=[{"id": "a", "price": 5, "quantity": "lots"}])])
    row = one(spark, line)
    assert row["skip_reason"] is None
    assert "contents" not in row["payload"]["custom_data"]  # empty contents are not sent


def test_purchase_without_value_is_skipped_but_add_to_cart_is_not(spark):
    rows = run(spark, [batch([
        commerce("purchase", source_message_id="p", total=None, products=[{"id": "a"}]),
        commerce("purchase", source_message_id="z", total="0"),
        commerce("add_to_cart", source_message_id="c", total=None, products=[{"id": "a"}]),
    ])])
    by_id = {r["event_id"]: r for r in rows}
    assert by_id["p"]["skip_reason"] == "purchase_without_value"
    assert by_id["z"]["skip_reason"] == "purchase_without_value"
    cart = by_id["c"]["payload"]["custom_data"]
    assert "value" not in cart and "currency" not in cart  # currency only with value


def test_missing_currency_defaults_and_invalid_currency_is_skipped(spark):
    rows = run(spark, [batch([
        commerce(source_message_id="none", currency=None),
        commerce(source_message_id="eur", currency=" eur "),
        commerce(source_message_id="bad", currency="US$"),
        commerce(source_message_id="blank", currency=""),
    ])], default_currency="EUR")
    by_id = {r["event_id"]: r for r in rows}
    assert by_id["none"]["payload"]["custom_data"]["currency"] == "EUR"
    assert by_id["eur"]["payload"]["custom_data"]["currency"] == "EUR"
    assert by_id["bad"]["skip_reason"] == "invalid_currency"
    assert by_id["blank"]["skip_reason"] == "invalid_currency"


# ----- time (SPEC §3, §8) ---------------------------------------------------------------------
def test_future_and_too_old_events(spark):
    rows = run(spark, [batch([
        commerce(source_message_id="edge-future", ts=(NOW + 60) * 1000 + 999),
        commerce(source_message_id="future", ts=(NOW + 61) * 1000),
        commerce(source_message_id="edge-old", ts=(NOW - 62 * 86400) * 1000),
        commerce(source_message_id="old", ts=(NOW - 62 * 86400 - 1) * 1000),
        commerce(source_message_id="missing", ts=None),
        commerce(source_message_id="text", ts="yesterday"),
    ])])
    reasons = {r["event_id"]: r["skip_reason"] for r in rows}
    assert reasons == {"edge-future": None, "future": "future_time", "edge-old": None,
                       "old": "too_old", "missing": "missing_timestamp",
                       "text": "missing_timestamp"}


def test_reason_order_first_applicable_wins(spark):
    # too old AND invalid amount AND no match keys → too_old
    line = batch([commerce(ts=1000, total="abc")], identities={})
    assert one(spark, line)["skip_reason"] == "too_old"


# ----- duplicates (SPEC §3, §8) ---------------------------------------------------------------
def test_duplicates_are_kept_once_deterministically(spark, ):
    first = batch([commerce(source_message_id="dup", total="10")])
    differing = batch([commerce(source_message_id="dup", total="11")])
    config = load_config(None, {"input": ["x"], "dry_run": True})
    df = spark.createDataFrame([(x, "f") for x in (first, first, differing)],
                               "value string, source_file string")
    kept = to_payloads(good_batches(parse_batches(df)), config, NOW).collect()
    assert len(kept) == 1
    assert json.loads(kept[0]["payload"])["custom_data"]["value"] == 10.0


def test_event_id_fallback_is_stable_and_position_dependent(spark):
    events = [commerce(source_message_id=None), commerce(source_message_id=None)]
    rows = run(spark, [batch(events, batch_id="b-1"), batch(events, batch_id="b-1")])
    by_position = {}
    for r in rows:
        by_position.setdefault(r["position"], set()).add(r["event_id"])
    assert all(len(ids) == 1 for ids in by_position.values())  # stable for a redelivery
    assert by_position[0] != by_position[1]  # but distinct per position
    assert len(next(iter(by_position[0]))) == 64


# ----- Limited Data Use (SPEC §6, §8) ---------------------------------------------------------
LDU_BATCHES = {
    "both-ca": {"attributes": {"$country": "USA", "$state": "California"}},
    "both-ny": {"attributes": {"$country": "US", "$state": "NY"}},
    "state-only": {"attributes": {"$state": "CA"}},
    "opted-out": {"consent": {"ccpa": {"data_sale_opt_out": {"consented": True}}}},
    "opt-out-string": {"consent": {"ccpa": {"data_sale_opt_out": {"consented": "true"}}}},
}


@pytest.mark.parametrize("mode,applies", [
    ("never", set()),
    ("always", {"both-ca", "both-ny"}),
    ("california", {"both-ca", "state-only"}),
    ("ccpa_opt_out", {"opted-out"}),
])
@pytest.mark.parametrize("dialect", ["capi", "offline_conversions"])
def test_ldu_modes(spark, mode, applies, dialect):
    lines = [batch([commerce(source_message_id=name)], **kw)
             for name, kw in LDU_BATCHES.items()]
    rows = run(spark, lines, dialect, ldu=mode)
    by_key = {r["event_id"]: r["payload"] for r in rows}
    for name, p in by_key.items():
        if name in applies:
            assert p["data_processing_options"] == ["LDU"], name
            us = LDU_BATCHES[name].get("attributes", {}).get("$country") in ("USA", "US")
            ca = LDU_BATCHES[name].get("attributes", {}).get("$state") in ("California", "CA")
            assert p["data_processing_options_country"] == (1 if us else 0)
            assert p["data_processing_options_state"] == (1000 if ca else 0)
        else:
            assert p["data_processing_options"] == [], name
            assert "data_processing_options_state" not in p


# ----- no Python on the data path -------------------------------------------------------------
def test_physical_plan_has_no_python_evaluation(spark, tmp_path):
    config = load_config(None, {"input": ["x"], "dry_run": True, "mapping.ldu": "ccpa_opt_out",
                                "mapping.value_mode": "price_x_quantity"})
    df = spark.createDataFrame([(batch([commerce()]), "f")], "value string, source_file string")
    final = to_payloads(good_batches(parse_batches(df)), config, NOW)
    plan = final._jdf.queryExecution().executedPlan().toString()
    for node in ("BatchEvalPython", "ArrowEvalPython", "PythonUDF", "MapInPandas",
                 "FlatMapGroupsInPandas", "PythonMapInArrow"):
        assert node not in plan
    assert "Generate" in plan  # the explode is there: we inspected the real plan


# ----- SPEC §9: more match keys, richer contents, profiles -------------------------------------
def ids_out(*pairs):
    """An outbound identities array of (type, identity) pairs."""
    return [{"identity_type": t, "identity": v, "timestamp_unixtime_ms": "1",
             "created_this_batch": False} for t, v in pairs]


@pytest.mark.parametrize("dialect", ["capi", "offline_conversions"])
def test_phone_sources_in_order_in_both_identity_dialects(spark, dialect):
    cases = {
        "mobile-in": ({"mobile_number": "+1 (650) 555-0100", "phone_number_2": "5550102"},
                      {"$Mobile": "5550101"}, "16505550100"),
        "mobile-out": (ids_out(("phone_number_2", "5550102"),
                               ("mobile_number", "0044 20 7946 0000")),
                       {"$mobile": "5550101"}, "442079460000"),
        "attr": ({"mobile_number": " ", "phone_number_2": "5550102"},
                 {"$MOBILE": "555-0101"}, "5550101"),
        "attr-list-ignored": ({"phone_number_3": "5550103"},
                              {"$mobile": ["5550101"]}, "5550103"),
        "second": (ids_out(("phone_number_3", "5550103"), ("phone_number_2", "555.0102")),
                   {}, "5550102"),
        "third": ({"phone_number_3": "(555) 0103"}, {"$mobile": "\u00a0"}, "5550103"),
        "invalid-first": ({"mobile_number": "12345", "phone_number_2": "5550102"}, {}, None),
        "too-long": ({"mobile_number": "1234567890123456"}, {}, None),
        "letters": ({"mobile_number": "650-555-CALL"}, {}, None),
        "hashed": ({"mobile_number": sha("16505550100").upper()}, {}, "=" + sha("16505550100")),
    }
    lines = []
    for name, (identities, attributes, _) in cases.items():
        ids = ([*identities, {"identity_type": "email", "identity": EMAIL}]
               if isinstance(identities, list) else {**identities, "email": EMAIL})
        lines.append(batch([commerce(source_message_id=name)], identities=ids,
                           attributes=attributes))
    rows = run(spark, lines, dialect)
    got = {}
    for r in rows:
        keys = r["payload"]["user_data" if dialect == "capi" else "match_keys"]
        got[r["event_id"]] = keys.get("ph" if dialect == "capi" else "phone")
    for name, (_, _, digits) in cases.items():
        if digits is None:
            expected = None
        else:
            h = digits[1:] if digits.startswith("=") else sha(digits)
            expected = [h] if dialect == "capi" else h
        assert got[name] == expected, name


@pytest.mark.parametrize("dialect", ["capi", "offline_conversions"])
def test_state_and_zip_follow_the_country(spark, dialect):
    cases = {
        "us": ({"$State": "California", "$Zip": "94105-1234", "$Country": "USA"}, "ca", "94105"),
        "absent": ({"$state": "District of Columbia", "$zip": 20001}, "dc", "20001"),
        "unmapped": ({"$state": "new york", "$zip": "10016 1234", "$country": "XX"},
                     "ny", "10016"),
        "blank-country": ({"$state": "Texas", "$country": " "}, "tx", None),
        "us-digest": ({"$state": "Puerto Rico", "$zip": "00901-0001",
                       "$country": sha("us").upper()}, "pr", "00901"),
        "other-digest": ({"$state": "California", "$zip": "94105-1234",
                          "$country": sha("pl")}, "california", "941051234"),
        "pl": ({"$state": "Mazowieckie", "$zip": "00-950", "$country": "pl"},
               "mazowieckie", "00950"),
        "gb": ({"$state": "California", "$zip": "SW1A 1AA", "$country": "GB"},
               "california", "sw1a1aa"),
        "code": ({"$state": "C.A.", "$zip": "9", "$country": "US"}, "ca", None),
        "number": ({"$zip": 94105}, None, "94105"),
    }
    lines = [batch([commerce(source_message_id=name)], attributes=attributes)
             for name, (attributes, _, _) in cases.items()]
    rows = run(spark, lines, dialect)
    key, zip_key = ("user_data", "zp") if dialect == "capi" else ("match_keys", "zip")
    got = {r["event_id"]: r["payload"][key] for r in rows}
    for name, (_, state, zip_code) in cases.items():
        assert got[name].get("st") == (state and sha(state)), name
        assert got[name].get(zip_key) == (zip_code and sha(zip_code)), name


@pytest.mark.parametrize("dialect", ["capi", "offline_conversions"])
def test_external_id_sources(spark, dialect):
    h = sha("someone")
    lines = [
        batch([commerce(source_message_id="customer_id")],
              identities={"customer_id": " C-1 ", "email": EMAIL}),
        batch([commerce(source_message_id="customerid")],
              identities={"customerid": "c-1", "email": EMAIL}),
        batch([commerce(source_message_id="outbound")],
              identities=ids_out(("customer_id", "C-1"), ("email", EMAIL))),
        batch([commerce(source_message_id="hashed")],
              identities={"customer_id": h.upper(), "email": EMAIL}),
        batch([commerce(source_message_id="none")], identities={"email": EMAIL}),
    ]
    key, ext = ("user_data", "external_id") if dialect == "capi" else ("match_keys",
                                                                       "extern_id")

    def external(**mapping):
        return {r["event_id"]: r["payload"][key].get(ext)
                for r in run(spark, lines, dialect, **mapping)}

    assert external() == {"customer_id": sha("C-1"), "customerid": sha("c-1"),  # case kept
                          "outbound": sha("C-1"), "hashed": h, "none": None}
    assert set(external(external_id_type="mpid").values()) == {sha("-123")}  # batch()'s mpid
    other = run(spark, [batch([commerce()], identities={"other_id_2": "L-7", "email": EMAIL,
                                                        "customer_id": "C-1"})],
                dialect, external_id_type="other_id_2")
    assert other[0]["payload"][key][ext] == sha("L-7")


def test_extended_keys_count_as_match_keys(spark):
    lines = [
        batch([commerce(source_message_id="phone")], identities={"mobile_number": "5550100"}),
        batch([commerce(source_message_id="st")], identities={}, attributes={"$state": "CA"}),
        batch([commerce(source_message_id="zip")], identities={}, attributes={"$zip": "94105"}),
        batch([commerce(source_message_id="ext")], identities={"customerid": "C-1"}),
        batch([commerce(source_message_id="none")], identities={"other": "x"},
              attributes={"$zip": "9", "$mobile": "12345"}),
    ]
    extended = {r["event_id"]: r["skip_reason"] for r in run(spark, lines)}
    assert extended == {"phone": None, "st": None, "zip": None, "ext": None,
                        "none": "no_match_keys"}
    mparticle = {r["event_id"]: r["skip_reason"] for r in run(spark, lines, profile="mparticle")}
    assert set(mparticle.values()) == {"no_match_keys"}


def test_rich_contents_in_capi_extended_only(spark):
    line = batch([commerce(products=[
        {"id": "a", "name": " Trail Runner Shoe ", "brand": "Acme", "category": "Footwear",
         "price": 10, "quantity": 2},
        {"id": "b", "name": 12345, "brand": "", "category": "Tools", "price": 5.5},
    ], total=None)])
    cd = one(spark, line)["payload"]["custom_data"]
    assert cd["contents"] == [
        {"id": "a", "quantity": 2, "item_price": 10.0, "title": "Trail Runner Shoe",
         "brand": "Acme", "category": "Footwear"},
        {"id": "b", "quantity": 1, "item_price": 5.5, "category": "Tools"},  # 12345: a number
    ]
    assert cd["content_type"] == "product"
    plain = [{"id": "a", "quantity": 2, "item_price": 10.0}, {"id": "b", "quantity": 1,
                                                              "item_price": 5.5}]
    mp = one(spark, line, profile="mparticle")["payload"]["custom_data"]
    assert mp["contents"] == plain and "content_type" not in mp
    legacy = one(spark, line, "offline_conversions")["payload"]
    assert legacy["contents"] == [{"id": "a", "quantity": 2, "price": 10.0},
                                  {"id": "b", "quantity": 1, "price": 5.5}]
    assert "content_type" not in legacy and "content_type" not in legacy["custom_data"]
    no_contents = one(spark, batch([commerce("add_to_cart", total="3", products=[])]))
    assert "content_type" not in no_contents["payload"]["custom_data"]


#: A batch with every key of §4 and §9, rich products and standard-named custom attributes.
FULL_BATCH = batch(
    [commerce(custom={"store": "42", "value": "see receipt"}, products=[
        {"id": "a", "name": "Mug", "brand": "Asgard", "category": "Home", "price": "10.25",
         "quantity": "2"}])],
    identities={"email": EMAIL, "customer_id": "C-1", "mobile_number": "+1 650 555 0100"},
    attributes={"$FirstName": "Ann", "$LastName": "Lee", "$city": "Menlo Park",
                "$country": "US", "$gender": "f", "$state": "California", "$zip": "94105-1234"},
    device={"ios_advertising_id": "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
)
MPARTICLE_KEYS = {"fn": sha("ann"), "ln": sha("lee"), "ct": sha("menlopark"),
                  "country": sha("us")}


def test_profile_mparticle_gives_mparticles_payloads_in_capi(spark):
    p = one(spark, FULL_BATCH, profile="mparticle")["payload"]
    assert p == {
        "event_name": "Purchase", "event_time": T_MS // 1000, "event_id": "m-1",
        "action_source": "physical_store",
        "user_data": {"em": [sha(EMAIL)], "madid": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
                      "ge": sha("f"), **MPARTICLE_KEYS},
        "data_processing_options": [],
        "custom_data": {"value": 25.5, "currency": "USD",
                        "contents": [{"id": "a", "quantity": 2, "item_price": 10.25}],
                        "order_id": "T-1", "store": "42"},  # the text "value" is not sent (§8)
    }
    extended = one(spark, FULL_BATCH)["payload"]
    assert extended["user_data"] == {**p["user_data"], "ph": [sha("16505550100")],
                                     "st": sha("ca"), "zp": sha("94105"),
                                     "external_id": sha("C-1")}
    assert extended["custom_data"] == {
        **p["custom_data"], "content_type": "product",
        "contents": [{"id": "a", "quantity": 2, "item_price": 10.25, "title": "Mug",
                      "brand": "Asgard", "category": "Home"}]}


def test_profile_mparticle_gives_mparticles_payloads_in_legacy(spark):
    p = one(spark, FULL_BATCH, "offline_conversions", profile="mparticle")["payload"]
    assert p == {
        "match_keys": {"email": sha(EMAIL), "madid": sha("6d92078a-8246-4ba4-ae5b-76104861e7dc"),
                       "gen": sha("f"), **MPARTICLE_KEYS},
        "event_name": "Purchase", "event_time": T_MS // 1000, "currency": "USD", "value": 25.5,
        "contents": [{"id": "a", "quantity": 2, "price": 10.25}], "order_id": "T-1",
        "data_processing_options": [],
        "custom_data": {"store": "42", "value": "see receipt"},  # legacy: unchanged
    }
    extended = one(spark, FULL_BATCH, "offline_conversions")["payload"]
    assert extended == {**p, "match_keys": {
        **p["match_keys"], "phone": sha("16505550100"), "st": sha("ca"), "zip": sha("94105"),
        "extern_id": sha("C-1")}}
