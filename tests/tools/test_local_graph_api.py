"""The local Graph API emulator answers like Meta's ``/{set_id}/events`` endpoint (SPEC §5)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from jobs.tools.local_graph_api import (
    CAPI_HASHED,
    CAPI_LIMIT,
    LEGACY_HASHED,
    LEGACY_LIMIT,
    MAX_AGE_NON_STORE_SECONDS,
    MAX_AGE_SECONDS,
    GraphApiEmulator,
    live_versions,
)
from tests.helpers import REPO_ROOT

NOW = 1793836800  # 2026-11-05T00:00:00Z, the demo's reference time
TOKEN = "test-token"
SET_ID = "1234567890"
H1 = "a" * 64
H2 = "0123456789abcdef" * 4
MADID = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
ROOT = REPO_ROOT


def capi_event(n: int = 0, **overrides) -> dict:
    event = {
        "event_name": "Purchase", "event_time": NOW - 3600, "event_id": f"evt-{n}",
        "action_source": "physical_store",
        "user_data": {"em": [H1], "madid": MADID, "ge": H2, "fn": H1, "country": H2},
        "custom_data": {"value": 12.5, "currency": "USD", "order_id": f"o-{n}",
                        "contents": [{"id": "sku-1", "quantity": 2, "item_price": 6.25}],
                        "store": "berlin"},
        "data_processing_options": [],
    }
    event.update(overrides)
    return event


def legacy_event(n: int = 0, **overrides) -> dict:
    event = {
        "match_keys": {"email": H1, "madid": H2, "gen": H2, "country": H1},
        "event_name": "Purchase", "event_time": NOW - 3600, "currency": "USD", "value": 12.5,
        "contents": [{"id": "sku-1", "quantity": 2, "price": 6.25}],
        "custom_data": {"store": "berlin"}, "order_id": f"o-{n}",
        "data_processing_options": [],
    }
    event.update(overrides)
    return event


@pytest.fixture
def api():
    with GraphApiEmulator(now=NOW, seed=1) as emulator:
        yield emulator


def events_url(emulator: GraphApiEmulator, set_id: str = SET_ID) -> str:
    return f"{emulator.url}/v24.0/{set_id}/events"


def post(emulator: GraphApiEmulator, data, *, token: str | None = TOKEN, form: bool = False,
         session: requests.Session | None = None, **extra) -> requests.Response:
    body = dict(extra)
    if token is not None:
        body["access_token"] = token
    if data is not None:
        body["data"] = json.dumps(data) if form else data
    send = (session or requests).post
    if form:
        return send(events_url(emulator), data=body, timeout=10)
    return send(events_url(emulator), json=body, timeout=10)


def error_of(response: requests.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "code", "error_subcode", "fbtrace_id",
            "is_transient"} <= set(body["error"])
    return body["error"]


def event_error(response: requests.Response, index: int, subcode: int = 2804050) -> dict:
    """An invalid-event error as Meta writes it, naming event ``index``."""
    assert response.status_code == 400
    err = error_of(response)
    assert (err["code"], err["error_subcode"], err["type"]) == (100, subcode, "OAuthException")
    assert err["message"] == "Invalid parameter"
    assert err["is_transient"] is False
    assert isinstance(err["error_user_title"], str) and err["error_user_title"]
    assert f"data[{index}]" in err["error_user_msg"]
    assert err["error_data"] == {"event_index": index}
    return err


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_capi_request_succeeds(api, form):
    events = [capi_event(0), capi_event(1)]
    r = post(api, events, form=form, upload_tag="run-1", test_event_code="TEST123")
    assert r.status_code == 200
    body = r.json()
    assert body["events_received"] == 2 and body["messages"] == []
    assert isinstance(body["fbtrace_id"], str) and body["fbtrace_id"]
    assert api.accepted_events() == [(SET_ID, events[0]), (SET_ID, events[1])]
    assert api.requests["ok"] == 1 and api.requests["total"] == 1


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_legacy_request_succeeds(api, form):
    events = [legacy_event(0), legacy_event(1, match_keys={"email": [H1, H2]})]
    r = post(api, events, form=form, upload_tag="run-1")
    assert r.status_code == 200
    assert r.json() == {"id": SET_ID, "num_processed_entries": 2}
    assert [e for _, e in api.accepted_events()] == events


def test_duplicates_are_all_recorded(api):
    event = capi_event(0)
    assert post(api, [event, event]).status_code == 200
    assert post(api, [event]).status_code == 200
    assert len(api.accepted_events()) == 3


def test_a_minimal_capi_event_is_enough(api):
    event = {"event_name": "AddToCart", "event_time": NOW, "action_source": "physical_store",
             "user_data": {"madid": MADID}}
    assert post(api, [event]).status_code == 200


# --------------------------------------------------------------------------- auth


def test_missing_token_is_code_104(api):
    r = post(api, [capi_event()], token=None)
    assert r.status_code == 400
    err = error_of(r)
    assert (err["code"], err["type"]) == (104, "OAuthException")
    assert err["message"] == "An access token is required to request this resource."
    assert api.accepted_events() == [] and api.requests["auth"] == 1


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_wrong_token_is_code_190(api, form):
    r = post(api, [capi_event()], token="not-the-token", form=form)
    assert r.status_code == 400
    err = error_of(r)
    assert (err["code"], err["type"]) == (190, "OAuthException")
    assert "Invalid OAuth access token" in err["message"]
    assert api.accepted_events() == []


def test_token_in_url_is_accepted_and_counted(api):
    event = capi_event()
    url = events_url(api) + f"?access_token={TOKEN}"
    r = requests.post(url, data={"data": json.dumps([event])}, timeout=10)
    assert r.status_code == 200 and r.json()["events_received"] == 1
    r = requests.post(url, json={"access_token": TOKEN, "data": [event]}, timeout=10)
    assert r.status_code == 200
    assert post(api, [event]).status_code == 200  # in the body: not counted
    assert api.token_in_url == 2
    assert api.stats()["token_in_url"] == 2
    assert api.accepted_events() == [(SET_ID, event)] * 3
    r = requests.post(events_url(api) + "?access_token=wrong", json={"data": [event]},
                      timeout=10)
    assert error_of(r)["code"] == 190 and api.token_in_url == 3


def test_bearer_token_is_accepted(api):
    event = capi_event()
    r = requests.post(events_url(api), json={"data": [event]},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200
    r = requests.post(events_url(api), json={"data": [event]},
                      headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert r.status_code == 400 and error_of(r)["code"] == 190
    assert api.token_in_url == 0


# --------------------------------------------------------------------------- request shape


@pytest.mark.parametrize(("dialect", "limit"), [("capi", CAPI_LIMIT), ("legacy", LEGACY_LIMIT)])
def test_request_size_limit(api, dialect, limit):
    make = capi_event if dialect == "capi" else legacy_event
    events = [make(i) for i in range(limit + 1)]
    r = post(api, events)
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == 100 and f"at most {limit} events" in err["message"]
    assert post(api, events[:limit]).status_code == 200
    assert len(api.accepted_events()) == limit


@pytest.mark.parametrize(("data", "message"), [
    (None, "data is required"),
    ({"event_name": "x"}, "must be an array"),
    ([], "non-empty"),
])
def test_data_must_be_a_non_empty_array(api, data, message):
    r = post(api, data)
    err = error_of(r)
    assert r.status_code == 400 and err["code"] == 100 and message in err["message"]


def test_form_data_must_be_json(api):
    r = requests.post(events_url(api), data={"access_token": TOKEN, "data": "[{oops"},
                      timeout=10)
    assert r.status_code == 400 and error_of(r)["code"] == 100


def test_unknown_paths_and_methods_answer_in_graph_shape(api):
    r = requests.get(events_url(api), timeout=10)
    err = error_of(r)
    assert r.status_code == 400 and (err["code"], err["type"]) == (100, "GraphMethodException")
    for path, component in (("/v24.0/123/other", "/other"), ("/v24/123/events", None),
                            ("/nothing", "/nothing"), ("/v24.0/123/events/x", "/events/x")):
        r = requests.post(api.url + path, json={"access_token": TOKEN, "data": [capi_event()]},
                          timeout=10)
        err = error_of(r)
        assert r.status_code == 400 and (err["code"], err["type"]) == (2500, "OAuthException")
        assert err["message"].startswith("Unknown path components: ")
        if component is not None:
            assert err["message"] == f"Unknown path components: {component}"
    assert api.accepted_events() == [] and api.requests["not_found"] == 5


# --------------------------------------------------------------------------- validation


NOT_HASHED, PURCHASE = 2804016, 2804010
CAPI_INVALID = [
    ({"user_data": {"em": ["Foo@Example.com"]}}, "data[2].user_data.em[0] must be a SHA-256",
     NOT_HASHED),
    ({"user_data": {"em": []}}, "data[2].user_data.em must be a SHA-256 hash (64 lowercase "
     "hex) or a non-empty list", None),
    ({"user_data": {"em": [7]}}, "data[2].user_data.em[0] must be a string", None),
    ({"user_data": {"fn": H1.upper()}}, "data[2].user_data.fn must be a SHA-256", NOT_HASHED),
    ({"user_data": {"ph": "+16505550100"}}, "data[2].user_data.ph must be a SHA-256",
     NOT_HASHED),
    ({"user_data": {"st": ["ca"]}}, "data[2].user_data.st[0] must be a SHA-256", NOT_HASHED),
    ({"user_data": {"zp": "94105"}}, "data[2].user_data.zp must be a SHA-256", NOT_HASHED),
    ({"user_data": {"external_id": "customer-7"}},
     "data[2].user_data.external_id must be a SHA-256", NOT_HASHED),
    ({"user_data": {"madid": H1}}, "data[2].user_data.madid must be sent unhashed", None),
    ({"user_data": {}}, "data[2].user_data must be an object with at least one", None),
    ({"user_data": {"email": H1}}, "data[2].user_data.email is not a valid user_data", None),
    ({"event_name": ""}, "data[2].event_name must be a non-empty string", None),
    ({"event_time": "1793836000"}, "data[2].event_time must be an integer", None),
    ({"action_source": "store"}, "data[2].action_source must be one of", None),
    ({"action_source": ["physical_store"]}, "data[2].action_source must be one of", None),
    ({"event_id": 42}, "data[2].event_id must be a string", None),
    ({"custom_data": {"value": 0, "currency": "USD"}},
     "data[2].custom_data.value must be a number greater than 0", None),
    ({"custom_data": {"value": 3.0}},
     "data[2].custom_data.currency is required: value and currency are required for Purchase",
     PURCHASE),
    ({"event_name": "AddToCart", "custom_data": {"value": 3.0}},
     "data[2].custom_data.currency is required when value", None),
    ({"event_name": "AddToCart", "custom_data": {"currency": "USD"}},
     "data[2].custom_data.value is required when currency", None),
    ({"custom_data": {"value": 3.0, "currency": "DOLLAR"}},
     "data[2].custom_data.currency must be a three-letter", None),
    ({"custom_data": {"order_id": "o"}}, "data[2].custom_data.value is required: value and "
     "currency are required for Purchase", PURCHASE),
    ({"custom_data": "x"}, "data[2].custom_data must be an object", None),
    ({"custom_data": {"value": 1, "currency": "USD", "contents": []}},
     "data[2].custom_data.contents must be a non-empty array", None),
    ({"custom_data": {"value": 1, "currency": "USD", "contents": [{"id": "a", "quantity": 0}]}},
     "data[2].custom_data.contents[0].quantity must be a number greater than 0", None),
    ({"custom_data": {"value": 1, "currency": "USD", "contents": [{"quantity": 1}]}},
     "data[2].custom_data.contents[0].id is required", None),
    ({"custom_data": {"value": 1, "currency": "USD",
                      "contents": [{"id": "a", "quantity": 1, "item_price": "3"}]}},
     "data[2].custom_data.contents[0].item_price must be a number", None),
    ({"custom_data": {"value": 1, "currency": "USD",
                      "contents": [{"id": "a", "quantity": 1, "brand": 3}]}},
     "data[2].custom_data.contents[0].brand must be a string", None),
    ({"custom_data": {"value": 1, "currency": "USD", "content_type": ["product"]}},
     "data[2].custom_data.content_type must be a string", None),
    ({"data_processing_options": ["LDU"]},
     "data[2].data_processing_options_country is required when data_processing_options", None),
    ({"data_processing_options": ["LDU"], "data_processing_options_country": 1},
     "data[2].data_processing_options_state is required", None),
    ({"data_processing_options": "LDU"}, "data[2].data_processing_options must be an array",
     None),
    ({"value": 3}, "data[2].value is not a valid Conversions API event parameter", None),
]


@pytest.mark.parametrize(("change", "message", "subcode"), CAPI_INVALID)
def test_one_invalid_capi_event_fails_the_request(api, change, message, subcode):
    events = [capi_event(i) for i in range(4)]
    events[2] = capi_event(2, **change)
    err = event_error(post(api, events), 2, subcode or 2804050)
    assert message in err["error_user_msg"], err["error_user_msg"]
    assert api.accepted_events() == [] and api.requests["invalid"] == 1


def test_ldu_with_country_and_state_is_valid(api):
    event = capi_event(data_processing_options=["LDU"], data_processing_options_country=1,
                       data_processing_options_state=1000)
    assert post(api, [event]).status_code == 200


def test_the_message_names_the_first_invalid_event(api):
    events = [capi_event(i) for i in range(5)]
    events[3]["user_data"] = {"em": ["plain@example.com"]}
    events[1]["action_source"] = "website_x"
    err = event_error(post(api, events), 1)
    assert "data[1].action_source must be one of" in err["error_user_msg"]


LEGACY_INVALID = [
    ({"match_keys": {"email": "foo@example.com"}}, "data[1].match_keys.email must be a SHA-256"),
    ({"match_keys": {"madid": MADID}}, "data[1].match_keys.madid must be a SHA-256"),
    ({"match_keys": {}}, "data[1].match_keys must be an object with at least one"),
    ({"match_keys": {"em": H1}}, "data[1].match_keys.em is not a valid match key"),
    ({"value": 0}, "data[1].value must be a number greater than 0"),
    ({"value": 5}, None),
    ({"event_name": "AddToCart", "value": 5, "currency": None},
     "data[1].currency is required when value is sent"),
    ({"currency": "usdollar"}, "data[1].currency must be a three-letter"),
    ({"contents": [{"id": "a", "quantity": 1, "price": "1.5"}]},
     "data[1].contents[0].price must be a number"),
    ({"data_processing_options": ["LDU"], "data_processing_options_country": 0},
     "data[1].data_processing_options_state is required"),
    ({"order_id": 7}, "data[1].order_id must be a string"),
    ({"custom_data": []}, "data[1].custom_data must be an object"),
    ({"action_source": "physical_store"}, "data[1].action_source is not a valid Offline"),
]


@pytest.mark.parametrize(("change", "message"), LEGACY_INVALID)
def test_one_invalid_legacy_event_fails_the_request(api, change, message):
    events = [legacy_event(i) for i in range(3)]
    events[1] = legacy_event(1, **change)
    for key in [k for k, v in change.items() if v is None]:
        del events[1][key]
    r = post(api, events)
    if message is None:  # value changed, still valid
        assert r.status_code == 200
        return
    err = event_error(r, 1, NOT_HASHED if "SHA-256" in message else 2804050)
    assert message in err["error_user_msg"], err["error_user_msg"]
    assert api.accepted_events() == []


def test_legacy_purchase_needs_value_and_currency(api):
    event = legacy_event()
    del event["value"], event["currency"]
    err = event_error(post(api, [event]), 0, PURCHASE)
    assert "value and currency are required for Purchase" in err["error_user_msg"]
    event["event_name"] = "AddToCart"
    assert post(api, [event]).status_code == 200


def test_mixed_dialects_fail(api):
    err = event_error(post(api, [capi_event(0), legacy_event(1)]), 1)
    assert "data[1].match_keys" in err["error_user_msg"]
    err = event_error(post(api, [legacy_event(0), capi_event(1)]), 1)
    assert "data[1].user_data" in err["error_user_msg"]


@pytest.mark.parametrize(("offset", "ok"), [
    (-MAX_AGE_SECONDS, True), (-MAX_AGE_SECONDS - 1, False), (60, True), (61, False),
])
@pytest.mark.parametrize("make", [capi_event, legacy_event], ids=["capi", "legacy"])
def test_event_time_window(api, make, offset, ok):
    events = [make(0), make(1, event_time=NOW + offset)]
    r = post(api, events)
    if ok:
        assert r.status_code == 200
        return
    err = event_error(r, 1, 2804003 if offset < 0 else 2804004)
    if offset < 0:
        assert err["error_user_title"] == "Event Timestamp Too Old"
        assert err["error_user_msg"].startswith("The timestamp for data[1] is too far in the "
                                                "past.")
        assert "within 62 days" in err["error_user_msg"]
    else:
        assert "data[1].event_time" in err["error_user_msg"]
        assert "in the future" in err["error_user_msg"]


# --------------------------------------------------------------------------- what Meta accepts


def test_data_as_json_strings_one_per_event(api):
    """The SDK's EventRequest.execute() sends data as a list of JSON strings."""
    events = [capi_event(0), capi_event(1)]
    for form in (False, True):
        r = post(api, [json.dumps(e) for e in events], form=form)
        assert r.status_code == 200 and r.json()["events_received"] == 2
    legacy = [legacy_event(0)]
    assert post(api, [json.dumps(e) for e in legacy]).status_code == 200
    assert [e for _, e in api.accepted_events()] == events + events + legacy
    err = event_error(post(api, [json.dumps(events[0]), "{oops", "[1]"]), 1)
    assert "data[1] must be a JSON object" in err["error_user_msg"]
    err = event_error(post(api, [json.dumps(events[0]), "[1]"]), 1)
    assert "data[1] must be a JSON object" in err["error_user_msg"]


@pytest.mark.parametrize("key", sorted(CAPI_HASHED))
def test_capi_hashed_keys_take_a_string_or_a_list(api, key):
    for value in (H1, [H1], [H1, H2]):
        event = capi_event(user_data={key: value})
        assert post(api, [event]).status_code == 200, (key, value)
    err = event_error(post(api, [capi_event(user_data={key: ["Plain"]})]), 0, NOT_HASHED)
    assert f"data[0].user_data.{key}[0] must be a SHA-256" in err["error_user_msg"]


@pytest.mark.parametrize("key", sorted(LEGACY_HASHED))
def test_legacy_hashed_keys_take_a_string_or_a_list(api, key):
    for value in (H1, [H1, H2]):
        assert post(api, [legacy_event(match_keys={key: value})]).status_code == 200
    err = event_error(post(api, [legacy_event(match_keys={key: "plain"})]), 0, NOT_HASHED)
    assert f"data[0].match_keys.{key} must be a SHA-256" in err["error_user_msg"]


def test_spec_9_keys_and_richer_contents(api):
    capi = capi_event(user_data={"em": [H1], "ph": [H2], "st": H1, "zp": H2, "external_id": H1,
                                 "madid": MADID},
                      custom_data={"value": 12.5, "currency": "USD", "content_type": "product",
                                   "contents": [{"id": "sku-1", "quantity": 2, "item_price": 6.25,
                                                 "title": "Shoe", "brand": "Acme",
                                                 "category": "Footwear"}]})
    legacy = legacy_event(match_keys={"email": H1, "phone": H2, "st": H1, "zip": H2,
                                      "extern_id": "customer-7"})
    assert post(api, [capi]).status_code == 200
    assert post(api, [legacy]).status_code == 200
    err = event_error(post(api, [legacy_event(match_keys={"extern_id": " "})]), 0)
    assert "data[0].match_keys.extern_id must be a non-empty string" in err["error_user_msg"]


def test_multipart_form_data_body(api):
    """Meta's curl -F examples."""
    event = capi_event()
    files = {"access_token": (None, TOKEN), "data": (None, json.dumps([event])),
             "test_event_code": (None, "TEST1")}
    r = requests.post(events_url(api), files=files, timeout=10)
    assert r.status_code == 200, r.text
    assert api.accepted_events() == [(SET_ID, event)]
    r = requests.post(events_url(api), files={"data": (None, json.dumps([event]))}, timeout=10)
    assert error_of(r)["code"] == 104


def test_query_string_and_body_parameters_combine(api):
    event = capi_event()
    r = requests.post(events_url(api) + f"?access_token={TOKEN}&data=" +
                      requests.utils.quote(json.dumps([event])), timeout=10)
    assert r.status_code == 200
    assert api.accepted_events() == [(SET_ID, event)]


# --------------------------------------------------------------------------- what Meta refuses


@pytest.mark.parametrize("source", ["website", "app", "email", "chat", "phone_call", "other",
                                    "system_generated", "business_messaging"])
def test_events_older_than_7_days_are_refused_outside_physical_store(api, source):
    ok = capi_event(0, action_source=source, event_time=NOW - MAX_AGE_NON_STORE_SECONDS)
    old = capi_event(1, action_source=source, event_time=NOW - MAX_AGE_NON_STORE_SECONDS - 1)
    assert post(api, [ok]).status_code == 200
    err = event_error(post(api, [ok, old]), 1, 2804003)
    assert err["error_user_title"] == "Event Timestamp Too Old"
    assert "within 7 days" in err["error_user_msg"]
    store = capi_event(2, event_time=NOW - 8 * 86400)
    assert post(api, [store]).status_code == 200


def proof_of(token: str, secret: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("where", ["body", "query", "form"])
def test_appsecret_proof_is_checked(where):
    secret = "app-s3cret"
    good, bad = proof_of(TOKEN, secret), proof_of(TOKEN, "other")
    with GraphApiEmulator(now=NOW, app_secret=secret, require_app_secret=True) as emulator:
        def send(proof: str | None) -> requests.Response:
            url, body = events_url(emulator), {"data": [capi_event()], "access_token": TOKEN}
            if proof is not None and where == "query":
                url += f"?appsecret_proof={proof}"
            elif proof is not None:
                body["appsecret_proof"] = proof
            if where == "form":
                body["data"] = json.dumps(body["data"])
                return requests.post(url, data=body, timeout=10)
            return requests.post(url, json=body, timeout=10)

        assert send(good).status_code == 200
        for proof, message in ((bad, "Invalid appsecret_proof provided in the API argument"),
                               (good.upper(), "Invalid appsecret_proof provided in the API "
                                "argument"),
                               (None, "API calls from the server require an appsecret_proof "
                                "argument")):
            r = send(proof)
            err = error_of(r)
            assert r.status_code == 400
            assert (err["code"], err["type"], err["message"]) == (
                100, "GraphMethodException", message)
        assert len(emulator.accepted_events()) == 1
        assert emulator.requests["auth"] == 3
        assert emulator.token_in_url == 0


def test_appsecret_proof_optional_unless_required():
    secret = "app-s3cret"
    with GraphApiEmulator(now=NOW, app_secret=secret) as emulator:
        assert post(emulator, [capi_event()]).status_code == 200
        r = post(emulator, [capi_event()], appsecret_proof=proof_of(TOKEN, "nope"))
        assert error_of(r)["message"] == "Invalid appsecret_proof provided in the API argument"
    with pytest.raises(ValueError, match="app_secret"):
        GraphApiEmulator(require_app_secret=True)


def test_served_api_versions_follow_metas_schedule():
    # 2026-11-05: v24.0 is served until 2026-11-10, v27.0 since 2026-11-04.
    assert live_versions(NOW) == ["v24.0", "v25.0", "v26.0", "v27.0"]
    assert live_versions(NOW + 26 * 86400) == ["v25.0", "v26.0", "v27.0"]  # 2026-12-01
    with GraphApiEmulator(now=NOW) as emulator:
        for version in ("v24.0", "v27.0"):
            r = requests.post(f"{emulator.url}/{version}/{SET_ID}/events",
                              json={"access_token": TOKEN, "data": [capi_event()]}, timeout=10)
            assert r.status_code == 200, version
        r = requests.post(f"{emulator.url}/v23.0/{SET_ID}/events",
                          json={"access_token": TOKEN, "data": [capi_event()]}, timeout=10)
        err = error_of(r)
        assert r.status_code == 400 and (err["code"], err["type"]) == (2635, "OAuthException")
        assert err["message"] == ("(#2635) You are calling a deprecated version of the Ads API. "
                                  "Please update to the latest version: v27.0.")
        r = requests.post(f"{emulator.url}/v28.0/{SET_ID}/events",
                          json={"access_token": TOKEN, "data": [capi_event()]}, timeout=10)
        assert error_of(r)["code"] == 2500
        assert len(emulator.accepted_events()) == 2
        assert emulator.requests["bad_version"] == 2
    with GraphApiEmulator(now=NOW + 26 * 86400) as emulator:
        event = capi_event(event_time=NOW + 26 * 86400)
        r = requests.post(f"{emulator.url}/v24.0/{SET_ID}/events",
                          json={"access_token": TOKEN, "data": [event]}, timeout=10)
        assert error_of(r)["code"] == 2635


def test_served_api_versions_can_be_configured():
    with GraphApiEmulator(now=NOW, api_versions=["v16.0", "v24.0"]) as emulator:
        for version, code in (("v16.0", None), ("v24.0", None), ("v15.0", 2635),
                              ("v25.0", 2500)):
            r = requests.post(f"{emulator.url}/{version}/{SET_ID}/events",
                              json={"access_token": TOKEN, "data": [legacy_event()]},
                              timeout=10)
            assert (r.status_code == 200) if code is None else error_of(r)["code"] == code
    with pytest.raises(ValueError, match=r"v25\.0"):
        GraphApiEmulator(api_versions=["25"])


def test_unknown_dataset_is_100_33():
    with GraphApiEmulator(now=NOW, datasets=[SET_ID, "42"]) as emulator:
        assert post(emulator, [capi_event()]).status_code == 200
        r = requests.post(f"{emulator.url}/v24.0/999/events",
                          json={"access_token": TOKEN, "data": [capi_event()]}, timeout=10)
        err = error_of(r)
        assert r.status_code == 400
        assert (err["code"], err["error_subcode"], err["type"]) == (
            100, 33, "GraphMethodException")
        assert err["message"].startswith(
            "Unsupported post request. Object with ID '999' does not exist, cannot be loaded "
            "due to missing permissions, or does not support this operation")
        assert "data[" not in json.dumps(err)
        assert emulator.accepted_events() == [(SET_ID, capi_event())]
        assert emulator.requests["unknown_object"] == 1
        # the token is checked first
        r = requests.post(f"{emulator.url}/v24.0/999/events",
                          json={"access_token": "bad", "data": [capi_event()]}, timeout=10)
        assert error_of(r)["code"] == 190


# --------------------------------------------------------------------------- connections


def test_keep_alive_reuses_one_connection(api):
    with requests.Session() as session:
        for i in range(5):
            r = post(api, [capi_event(i)], session=session)
            assert r.status_code == 200 and r.headers["Content-Length"]
        error_of(post(api, [capi_event(9)], token="wrong", session=session))
        assert post(api, [legacy_event(0)], form=True, session=session).status_code == 200
    assert api.connections == 1
    assert api.requests["total"] == 7


def test_latency_does_not_serialize_requests():
    with GraphApiEmulator(now=NOW, latency_ms=300) as emulator:
        statuses: list[int] = []

        def send(i: int) -> None:
            statuses.append(post(emulator, [capi_event(i)]).status_code)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    assert statuses == [200] * 4
    assert 0.3 <= elapsed < 1.0


def test_non_loopback_hosts_are_refused():
    for host in ("0.0.0.0", "192.168.1.10", "example.com", "::"):
        with pytest.raises(ValueError, match="loopback"):
            GraphApiEmulator(host=host)


# --------------------------------------------------------------------------- faults


def test_5xx_fault():
    with GraphApiEmulator(now=NOW, seed=3, error_5xx_rate=1.0) as emulator:
        statuses = set()
        for i in range(12):
            r = post(emulator, [capi_event(i)])
            err = error_of(r)
            assert (err["code"], err["is_transient"]) == (2, True)
            assert "Please retry your request later" in err["message"]
            statuses.add(r.status_code)
        assert statuses == {500, 503}
        assert emulator.accepted_events() == [] and emulator.requests["error_5xx"] == 12


def test_transient_fault():
    with GraphApiEmulator(now=NOW, seed=3, transient_rate=1.0) as emulator:
        for i in range(8):
            r = post(emulator, [capi_event(i)])
            err = error_of(r)
            assert r.status_code in (400, 500)
            assert err["code"] in (1, 2) and err["is_transient"] is True
        assert emulator.accepted_events() == [] and emulator.requests["transient"] == 8


def test_throttle_fault():
    with GraphApiEmulator(now=NOW, seed=3, throttle_rate=1.0) as emulator:
        codes = set()
        for i in range(40):
            r = post(emulator, [capi_event(i)])
            err = error_of(r)
            assert r.status_code == 400
            codes.add(err["code"])
            if err["code"] == 80004:
                usage = json.loads(r.headers["X-Business-Use-Case-Usage"])
                assert usage[SET_ID][0]["estimated_time_to_regain_access"] == 0
                assert "too many calls to this ad-account" in err["message"]
        assert codes == {4, 17, 613, 80004}
        assert emulator.accepted_events() == [] and emulator.requests["throttled"] == 40


def test_reset_before_drops_the_connection_and_the_events():
    with GraphApiEmulator(now=NOW, reset_before_rate=1.0) as emulator:
        with pytest.raises(requests.ConnectionError):
            post(emulator, [capi_event()])
        assert emulator.accepted_events() == []
        assert emulator.requests["reset_before"] == 1


def test_reset_after_records_the_events_then_drops_the_connection():
    with GraphApiEmulator(now=NOW, reset_after_rate=1.0) as emulator:
        events = [capi_event(0), capi_event(1)]
        with pytest.raises(requests.ConnectionError):
            post(emulator, events)
        assert emulator.accepted_events() == [(SET_ID, e) for e in events]
        assert emulator.requests["reset_after"] == 1


def test_a_dropped_connection_does_not_break_the_next_request():
    with GraphApiEmulator(now=NOW, seed=5, reset_before_rate=0.5) as emulator, \
            requests.Session() as session:
        outcomes = []
        for i in range(10):
            try:
                outcomes.append(post(emulator, [capi_event(i)], session=session).status_code)
            except requests.ConnectionError:
                outcomes.append("reset")
        assert "reset" in outcomes and 200 in outcomes
        assert len(emulator.accepted_events()) == outcomes.count(200)


def test_reject_rate_is_deterministic_per_event():
    events = [capi_event(i) for i in range(40)]
    with GraphApiEmulator(now=NOW, seed=11, reject_rate=0.3) as emulator:
        def rejected_ids() -> set[str]:
            out = set()
            for event in events:
                r = post(emulator, [event])
                if r.status_code != 200:
                    err = event_error(r, 0)
                    assert err["error_user_msg"] == "data[0] rejected by the emulator (reject-rate)"
                    out.add(event["event_id"])
            return out

        first = rejected_ids()
        assert 0 < len(first) < len(events)
        assert rejected_ids() == first
        # a whole chunk fails on its first rejected event; the rest of it can be isolated
        first_index = next(i for i, e in enumerate(events) if e["event_id"] in first)
        err = event_error(post(emulator, events), first_index)
        assert f"data[{first_index}] rejected" in err["error_user_msg"]
        good = [e for e in events if e["event_id"] not in first]
        assert post(emulator, good).status_code == 200
    legacy = [legacy_event(i) for i in range(40)]
    with GraphApiEmulator(now=NOW, seed=11, reject_rate=0.3) as emulator:
        once = [post(emulator, [e]).status_code for e in legacy]
        assert [post(emulator, [e]).status_code for e in legacy] == once
        assert 400 in once and 200 in once


def _fault_run(seed: int) -> list:
    outcomes = []
    with GraphApiEmulator(now=NOW, seed=seed, error_5xx_rate=0.2, transient_rate=0.2,
                          throttle_rate=0.2, reset_before_rate=0.1) as emulator:
        for i in range(30):
            try:
                r = post(emulator, [capi_event(i)])
            except requests.ConnectionError:
                outcomes.append("reset")
                continue
            code = r.json()["error"]["code"] if r.status_code != 200 else None
            outcomes.append((r.status_code, code))
    return outcomes


def test_a_seed_reproduces_the_faults():
    first = _fault_run(42)
    assert len({str(o) for o in first}) > 3
    assert _fault_run(42) == first
    assert _fault_run(43) != first


# --------------------------------------------------------------------------- inspection


def test_record_file_holds_accepted_events_and_never_the_token(tmp_path):
    record = tmp_path / "accepted.jsonl"
    with GraphApiEmulator(now=NOW, token="s3cret-token", record=record) as emulator:
        events = [capi_event(0), capi_event(1)]
        assert post(emulator, events, token="s3cret-token").status_code == 200
        assert post(emulator, [capi_event(2)], token="wrong").status_code == 400
    text = record.read_text()
    assert "s3cret-token" not in text
    assert [json.loads(line) for line in text.splitlines()] == [
        {"set_id": SET_ID, "event": e} for e in events]


def test_http_inspection_endpoints_and_reset(api):
    events = [capi_event(0), capi_event(1)]
    post(api, events)
    post(api, [capi_event(2)], token="wrong")
    listed = requests.get(f"{api.url}/_emulator/events", timeout=10).json()
    assert listed == [{"set_id": SET_ID, "event": e} for e in events]
    stats = requests.get(f"{api.url}/_emulator/stats", timeout=10).json()
    assert stats["requests"]["total"] == 2
    assert stats["requests"]["ok"] == 1 and stats["requests"]["auth"] == 1
    assert stats["events_accepted"] == 2 and stats["seed"] == 1
    assert requests.post(f"{api.url}/_emulator/reset", timeout=10).status_code == 200
    assert api.accepted_events() == [] and api.requests["total"] == 0
    assert requests.get(f"{api.url}/_emulator/events", timeout=10).json() == []


def test_reset_in_process(api):
    post(api, [capi_event()])
    api.reset()
    assert api.accepted_events() == []
    assert set(api.requests.values()) == {0}


# --------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_serves_until_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.tools.local_graph_api", "--port", "0", "--now", str(NOW),
         "--token", "cli-secret", "--verbose"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        url = match.group(1)
        r = requests.post(f"{url}/v24.0/{SET_ID}/events",
                          json={"access_token": "cli-secret", "data": [capi_event()]}, timeout=10)
        assert r.status_code == 200 and r.json()["events_received"] == 1
        r = requests.post(f"{url}/v24.0/{SET_ID}/events?access_token=cli-secret",
                          json={"data": [capi_event()]}, timeout=10)
        assert r.status_code == 200
        stats = requests.get(f"{url}/_emulator/stats", timeout=10).json()
        assert stats["events_accepted"] == 2 and stats["token_in_url"] == 1
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "cli-secret" not in out + err
    assert "POST /v24.0/1234567890/events 200" in err


@pytest.mark.slow
def test_cli_refuses_a_public_host():
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.tools.local_graph_api", "--port", "0", "--host", "0.0.0.0"],
        cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "loopback" in proc.stderr
