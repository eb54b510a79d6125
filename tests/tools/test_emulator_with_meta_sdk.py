"""Meta's own Python business SDK (``facebook-business``) as a real client of the emulator.

The SDK is driven only through its public API, the way its README shows
(``FacebookAdsApi.init(...)``, ``EventRequest(...).execute()``, ``BatchProcessor``), and pointed
at the emulator through the SDK's own ``FacebookSession.GRAPH`` (the Graph URL every SDK call is
built from). Name resolution and connections to anything but loopback fail the test, so nothing
leaves 127.0.0.1; each test also checks that the emulator received the SDK's requests.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.batch_processor import BatchProcessor
from facebook_business.adobjects.serverside.content import Content
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.event_request_async import (
    EventRequestAsync,
)
from facebook_business.adobjects.serverside.gender import Gender
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from jobs.tools.local_graph_api import GraphApiEmulator

NOW = 1_793_836_800  # 2026-11-05T00:00:00Z
TOKEN = "sdk-test-token"
APP_SECRET = "sdk-app-secret"
PIXEL_ID = "1234567890"
API_VERSION = "v26.0"  # the SDK's own default (BatchProcessor always uses it)
DAY = 86400


def _is_loopback(host: Any) -> bool:
    if host in ("localhost", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any name lookup or connection to a non-loopback address fails the test."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host.decode() if isinstance(host, bytes) else host):
            pytest.fail(f"the SDK tried to resolve {host!r}: traffic must stay on loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            pytest.fail(f"the SDK tried to connect to {address!r}: traffic must stay on "
                        "loopback")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphApiEmulator]:
    """The emulator, requiring appsecret_proof, with the SDK's Graph URL pointed at it."""
    with GraphApiEmulator(token=TOKEN, now=NOW, seed=1, app_secret=APP_SECRET,
                          require_app_secret=True, datasets=[PIXEL_ID]) as emu:
        monkeypatch.setattr(FacebookSession, "GRAPH", emu.url)
        previous = FacebookAdsApi.get_default_api()
        yield emu
        FacebookAdsApi.set_default_api(previous)


def init_sdk(access_token: str = TOKEN, app_secret: str = APP_SECRET,
             api_version: str = API_VERSION) -> FacebookAdsApi:
    # crash_log=False: the SDK's crash reporter would post to graph.facebook.com.
    return FacebookAdsApi.init(access_token=access_token, app_secret=app_secret,
                               api_version=api_version, crash_log=False)


def store_event(n: int, event_time: int = NOW - 3600,
                source: ActionSource = ActionSource.PHYSICAL_STORE) -> Event:
    user_data = UserData(
        emails=[f"shopper{n}@example.com"], phones=["+1 (650) 555-0100"],
        first_names=["Ada"], last_names=["Lovelace"], cities=["Menlo Park"], states=["CA"],
        zip_codes=["94025"], country_codes=["US"], genders=[Gender.FEMALE],
        external_ids=[hashlib.sha256(f"customer-{n}".encode()).hexdigest()])
    if source is ActionSource.WEBSITE:
        user_data.client_user_agent = "Mozilla/5.0"
    custom_data = CustomData(
        value=12.5, currency="USD", order_id=f"order-{n}", content_type="product",
        contents=[Content(product_id="sku-1", quantity=2, item_price=6.25, title="Shoe",
                          brand="Acme", category="Footwear")])
    event = Event(event_name="Purchase", event_time=event_time, event_id=f"order-{n}",
                  user_data=user_data, custom_data=custom_data, action_source=source)
    if source is ActionSource.WEBSITE:
        event.event_source_url = "https://shop.example.com/checkout"
    return event


def refusal(events: list[Event]) -> FacebookRequestError:
    with pytest.raises(FacebookRequestError) as caught:
        EventRequest(pixel_id=PIXEL_ID, events=events).execute()
    return caught.value


# --------------------------------------------------------------------------- accepted


def test_event_request_with_physical_store_events_is_accepted(emulator):
    init_sdk()
    events = [store_event(n) for n in range(3)]
    response = EventRequest(pixel_id=PIXEL_ID, events=events).execute()
    assert response.events_received == 3
    assert isinstance(response.fbtrace_id, str) and response.fbtrace_id
    assert emulator.accepted_events() == [(PIXEL_ID, e.normalize()) for e in events]
    recorded = emulator.accepted_events()[0][1]
    assert recorded["action_source"] == "physical_store"
    assert isinstance(recorded["user_data"]["fn"], list)  # the SDK sends lists
    assert emulator.requests == {**emulator.requests, "total": 1, "ok": 1}
    # The SDK's session puts access_token and appsecret_proof in the query string.
    assert emulator.token_in_url == 1


def test_batch_processor_delivers_2500_events(emulator):
    init_sdk()
    events = [store_event(n) for n in range(2500)]
    BatchProcessor(batch_size=50, concurrent_requests=4).process_events(
        EventRequestAsync(pixel_id=PIXEL_ID, events=[]), events)
    accepted = emulator.accepted_events()
    assert len(accepted) == 2500
    assert sorted(e["event_id"] for _, e in accepted) == sorted(f"order-{n}" for n in range(2500))
    assert emulator.requests["ok"] == emulator.requests["total"] == 50
    assert emulator.token_in_url == 0  # EventRequestAsync sends the token in the body


# --------------------------------------------------------------------------- refused


@pytest.mark.parametrize(("source", "age_days", "window_days"), [
    (ActionSource.PHYSICAL_STORE, 63, 62),
    (ActionSource.WEBSITE, 8, 7),
], ids=["store-63-days", "website-8-days"])
def test_too_old_events_are_refused_with_2804003(emulator, source, age_days, window_days):
    init_sdk()
    fresh = store_event(0, source=source, event_time=NOW - (window_days - 1) * DAY)
    old = store_event(1, source=source, event_time=NOW - age_days * DAY)
    error = refusal([fresh, old])
    assert error.http_status() == 400
    assert error.api_error_code() == 100
    assert error.api_error_subcode() == 2804003
    assert error.api_error_type() == "OAuthException"
    assert error.api_error_message() == "Invalid parameter"
    assert error.api_transient_error() is False
    body = error.body()["error"]
    assert body["error_user_title"] == "Event Timestamp Too Old"
    assert f"within {window_days} days" in body["error_user_msg"]
    assert "data[1]" in body["error_user_msg"] and body["error_data"] == {"event_index": 1}
    assert isinstance(body["fbtrace_id"], str) and body["fbtrace_id"]
    assert emulator.accepted_events() == []
    assert EventRequest(pixel_id=PIXEL_ID, events=[fresh]).execute().events_received == 1
    assert emulator.requests["invalid"] == 1 and emulator.requests["ok"] == 1


def test_a_bad_token_is_http_400_code_190(emulator):
    init_sdk(access_token="not-the-token")
    error = refusal([store_event(0)])
    assert (error.http_status(), error.api_error_code(), error.api_error_type()) == (
        400, 190, "OAuthException")
    assert emulator.accepted_events() == [] and emulator.requests["auth"] == 1


def test_a_wrong_appsecret_proof_is_code_100(emulator):
    init_sdk(app_secret="not-the-app-secret")
    error = refusal([store_event(0)])
    assert (error.http_status(), error.api_error_code()) == (400, 100)
    assert error.api_error_message() == "Invalid appsecret_proof provided in the API argument"
    assert error.api_error_type() == "GraphMethodException"
    assert emulator.accepted_events() == [] and emulator.requests["auth"] == 1


def test_an_unknown_dataset_is_100_33(emulator):
    init_sdk()
    with pytest.raises(FacebookRequestError) as caught:
        EventRequest(pixel_id="999", events=[store_event(0)]).execute()
    error = caught.value
    assert (error.api_error_code(), error.api_error_subcode()) == (100, 33)
    assert "Object with ID '999' does not exist" in error.api_error_message()
    assert emulator.requests["unknown_object"] == 1


def test_a_version_meta_no_longer_serves_is_code_2635(emulator):
    init_sdk(api_version="v23.0")
    error = refusal([store_event(0)])
    assert (error.http_status(), error.api_error_code()) == (400, 2635)
    assert "deprecated version of the Ads API" in error.api_error_message()
    assert emulator.requests["bad_version"] == 1
