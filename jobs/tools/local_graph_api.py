"""A local emulator of Meta's Graph API ``POST /{api_version}/{set_id}/events`` (SPEC §5).

Users rehearse backfills against it, and the tests and the demo run against it, so it answers
the way the real endpoint does, for any client (Meta's own ``facebook-business`` SDK included):

- it accepts what Meta accepts: the access token (and ``appsecret_proof``) in the query string,
  in a JSON, form-encoded or ``multipart/form-data`` body, or as ``Authorization: Bearer``;
  ``data`` as an array of event objects or of JSON strings, one per event; hashed customer
  keys as a string or a list of strings; both wire dialects (the Conversions API ``capi`` and
  the legacy ``offline_conversions``);
- it refuses what Meta refuses, with Meta's error bodies (``message``, ``type``, ``code``,
  ``error_subcode``, ``error_user_title``, ``error_user_msg``, ``error_data``, ``fbtrace_id``,
  ``is_transient``): a bad token (HTTP 400, code 190), a wrong or missing ``appsecret_proof``
  (code 100), API versions Meta no longer serves (code 2635), unknown paths (code 2500), an
  unknown dataset (100/33), and one invalid event failing the whole request (code 100, the
  first invalid event named as ``data[i]`` in ``error_user_msg`` and as
  ``error_data.event_index``), e.g. an ``event_time`` older than 7 days (62 days for
  ``physical_store``);
- HTTP/1.1 keep-alive for pooled clients.

It binds loopback addresses only and sends no traffic anywhere. The access token and the app
secret are never logged, printed or written to the record file. Requests that carry the token
in the URL are accepted, as Meta does, and counted (``stats()["token_in_url"]``) so a test can
assert that a client never does it.

Faults can be injected, reproducibly for a given request order (``random.Random(seed)``):
latency, connections reset before or after the events land, HTTP 5xx, transient errors,
throttling (codes 4, 17, 613, 80004) and per-event rejections decided by a hash of the event,
so a re-sent event is rejected again.

Examples
--------
In process (tests)::

    with GraphApiEmulator(now=1793836800) as api:
        requests.post(f"{api.url}/v26.0/123/events",
                      json={"access_token": "test-token", "data": [event]})
        api.accepted_events()  # [('123', {...})]

From a shell (prints ``listening on http://127.0.0.1:PORT`` when ready)::

    python -m jobs.tools.local_graph_api --port 8765 --now 1793836800 --throttle-rate 0.05
"""

from __future__ import annotations

import argparse
import base64
import calendar
import email.parser
import email.policy
import hashlib
import hmac
import ipaddress
import json
import math
import os
import random
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs

DEFAULT_TOKEN = "test-token"
#: Events per request: the Conversions API takes 1000, the Offline Conversions API 2000.
CAPI_LIMIT = 1000
LEGACY_LIMIT = 2000
#: Meta's event_time window: ``physical_store`` events (and, as the emulator's choice, the
#: legacy dialect) up to 62 days old, every other action_source up to 7 days; at most 60 s
#: in the future (the emulator's choice: Meta documents no future limit).
MAX_AGE_SECONDS = 62 * 86400
MAX_AGE_NON_STORE_SECONDS = 7 * 86400
MAX_FUTURE_SECONDS = 60
#: Largest request body read (a 2000-event legacy request is about 1-2 MB).
MAX_BODY_BYTES = 64 * 1024 * 1024

#: Request outcomes counted in ``GraphApiEmulator.requests`` (besides ``total``).
OUTCOMES = ("ok", "invalid", "auth", "throttled", "error_5xx", "transient",
            "reset_before", "reset_after", "not_found", "bad_version", "unknown_object")

#: error_subcodes. Documented by Meta's replies: 2804003 (event_time too old, title "Event
#: Timestamp Too Old"), 2804016 (a customer key not hashed), 33 (unknown object or missing
#: permission). The emulator's own choices: 2804050 (any other invalid event), 2804004
#: (event_time in the future), 2804010 (Purchase without value/currency).
SUBCODE_INVALID = 2804050
SUBCODE_TOO_OLD = 2804003
SUBCODE_FUTURE = 2804004
SUBCODE_NOT_HASHED = 2804016
SUBCODE_PURCHASE_VALUE = 2804010
SUBCODE_UNKNOWN_OBJECT = 33
#: error_user_title per subcode ("Event Timestamp Too Old" is Meta's; the others are the
#: emulator's wording).
USER_TITLES = {
    SUBCODE_TOO_OLD: "Event Timestamp Too Old",
    SUBCODE_FUTURE: "Event Timestamp Too Far In The Future",
    SUBCODE_NOT_HASHED: "Customer Information Not Hashed",
    SUBCODE_PURCHASE_VALUE: "Missing Value Or Currency For Purchase Event",
    SUBCODE_INVALID: "Invalid Event Parameter",
}

#: Marketing API versions (the Conversions API is part of it) as Meta's "Marketing API version
#: history" page lists them: (release date, expiration date or None when "TBD"), UTC days.
#: A version is served from its release day until the day before its expiration date.
MARKETING_API_VERSIONS: dict[str, tuple[str, str | None]] = {
    "v20.0": ("2024-05-21", "2025-05-06"),
    "v21.0": ("2024-10-02", "2025-09-09"),
    "v22.0": ("2025-01-21", "2026-02-19"),
    "v23.0": ("2025-05-29", "2026-06-09"),
    "v24.0": ("2025-10-08", "2026-11-10"),
    "v25.0": ("2026-02-18", "2027-02-23"),
    "v26.0": ("2026-07-29", None),
    "v27.0": ("2026-11-04", None),
}

ACTION_SOURCES = frozenset({
    "email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
    "business_messaging", "other",
})
CAPI_FIELDS = frozenset({
    "event_name", "event_time", "event_id", "event_source_url", "opt_out", "user_data",
    "custom_data", "app_data", "data_processing_options", "data_processing_options_country",
    "data_processing_options_state", "action_source", "referrer_url", "messaging_channel",
    "original_event_data", "attribution_data", "customer_segmentation",
    "advanced_measurement_table",
})
LEGACY_FIELDS = frozenset({
    "match_keys", "event_name", "event_time", "currency", "value", "contents", "custom_data",
    "order_id", "item_number", "content_type", "content_ids", "store_data",
    "data_processing_options", "data_processing_options_country", "data_processing_options_state",
})
#: capi user_data: hashed keys (each a hash or a list of hashes: Meta's "string or
#: list<string>") and parameters sent as they are. ``external_id`` must be hashed here (SPEC
#: §9); Meta only recommends hashing it.
CAPI_HASHED = frozenset({
    "em", "ph", "fn", "ln", "ct", "st", "zp", "country", "ge", "db", "external_id", "f5first",
    "f5last", "fi", "dobd", "dobm", "doby",
})
CAPI_RAW = frozenset({
    "client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id", "fb_login_id",
    "lead_id", "anon_id", "page_id", "page_scoped_user_id", "ctwa_clid", "ig_account_id",
    "ig_sid",
})
#: legacy match_keys: hashed keys (a hash or a list of hashes); madid is hashed in this API;
#: the ids are raw.
LEGACY_HASHED = frozenset({
    "email", "phone", "gen", "doby", "dobm", "dobd", "ln", "fn", "fi", "f5first", "f5last",
    "ct", "st", "zip", "country", "madid",
})
LEGACY_RAW = frozenset({"extern_id", "lead_id", "appuid", "pageuid"})
#: Request-level string parameters (besides access_token, appsecret_proof and data).
REQUEST_STRINGS = ("upload_tag", "test_event_code", "namespace_id", "upload_id",
                   "upload_source", "partner_agent")
DELIVERY_CATEGORIES = frozenset({"in_store", "curbside", "home_delivery"})

_EVENTS_PATH = re.compile(r"/(v\d+\.\d+)/([A-Za-z0-9_]+)/events/?")
_VERSIONED_PATH = re.compile(r"/(v\d+\.\d+)(/[^/]*)?(/.*)?")
_HEX64 = re.compile(r"[0-9a-f]{64}").fullmatch
_CURRENCY = re.compile(r"[A-Za-z]{3}").fullmatch
_MISSING = object()
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required",
            413: "Payload Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}

_SERVER_ERROR = "An unexpected error has occurred. Please retry your request later."
_GRAPH_DOCS = "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
#: (HTTP status, code, message) of the transient errors.
_TRANSIENT = (
    (400, 1, "An unknown error occurred"),
    (500, 1, "An unknown error occurred"),
    (400, 2, "Service temporarily unavailable"),
    (500, 2, _SERVER_ERROR),
)
#: (code, error_subcode, message) of the throttling errors, all HTTP 400.
_THROTTLE = (
    (4, None, "(#4) Application request limit reached"),
    (17, None, "(#17) User request limit reached"),
    (613, None, "(#613) Calls to this api have exceeded the rate limit."),
    (80004, 2446079, "(#80004) There have been too many calls to this ad-account. Wait a bit and "
     "try again. For more info, please refer to "
     "https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management."),
)


# --------------------------------------------------------------------------- versions


def _version_key(version: str) -> tuple[int, int]:
    major, _, minor = version[1:].partition(".")
    return int(major), int(minor or 0)


def _utc_day(day: str) -> int:
    return calendar.timegm(time.strptime(day, "%Y-%m-%d"))


def live_versions(now: int) -> list[str]:
    """The Marketing API versions Meta serves at Unix time ``now``, oldest first."""
    live = []
    for version, (released, expires) in MARKETING_API_VERSIONS.items():
        if _utc_day(released) <= now and (expires is None or now < _utc_day(expires)):
            live.append(version)
    return sorted(live, key=_version_key)


# --------------------------------------------------------------------------- validation


class _Invalid(Exception):
    """An invalid event: ``field`` is the path after ``data[i]`` (``.user_data.em[0]``).

    ``text``, when given, is the whole ``error_user_msg`` with ``{at}`` standing for
    ``data[i]``; otherwise it is ``data[i]<field> <reason>``.
    """

    def __init__(self, field: str, reason: str, subcode: int = SUBCODE_INVALID,
                 text: str | None = None) -> None:
        super().__init__(field, reason)
        self.field, self.reason, self.subcode, self.text = field, reason, subcode, text

    def user_message(self, index: int) -> str:
        at = f"data[{index}]"
        if self.text is not None:
            return self.text.replace("{at}", at)
        return f"{at}{self.field} {self.reason}"


def _is_number(v: Any) -> bool:
    return type(v) is int or (type(v) is float and math.isfinite(v))


_HASH_REASON = "must be a SHA-256 hash (64 lowercase hex)"


def _check_hashed(v: Any, path: str) -> None:
    """A hashed customer key: one hash, or a non-empty list of hashes."""
    if type(v) is str:
        if not _HEX64(v):
            raise _Invalid(path, _HASH_REASON, SUBCODE_NOT_HASHED)
    elif type(v) is list and v:
        for j, h in enumerate(v):
            if type(h) is not str:
                raise _Invalid(f"{path}[{j}]", "must be a string")
            if not _HEX64(h):
                raise _Invalid(f"{path}[{j}]", _HASH_REASON, SUBCODE_NOT_HASHED)
    else:
        raise _Invalid(path, "must be a SHA-256 hash (64 lowercase hex) or a non-empty list "
                       "of them")


def _check_customer_keys(keys: dict[str, Any], where: str, hashed: frozenset[str],
                         raw: frozenset[str], *, raw_madid: bool) -> None:
    """Check capi ``user_data`` or legacy ``match_keys``; paths are built only on failure."""
    for key, v in keys.items():
        if key in hashed:
            _check_hashed(v, f"{where}.{key}")
        elif raw_madid and key == "madid":
            if type(v) is not str or not v:
                raise _Invalid(f"{where}.{key}", "must be a non-empty string")
            if _HEX64(v):
                raise _Invalid(f"{where}.{key}", "must be sent unhashed in the Conversions API "
                               "(got a SHA-256 hash)")
        elif key in raw:
            if type(v) is not str or not v.strip():
                raise _Invalid(f"{where}.{key}", "must be a non-empty string")
        else:
            raise _Invalid(f"{where}.{key}", "is not a valid " +
                           ("user_data parameter" if raw_madid else "match key"))


def _check_name(ev: dict[str, Any]) -> None:
    name = ev.get("event_name", _MISSING)
    if name is _MISSING:
        raise _Invalid(".event_name", "is required")
    if type(name) is not str or not name.strip():
        raise _Invalid(".event_name", "must be a non-empty string")


def _check_time(ev: dict[str, Any], now: int, max_age: int) -> None:
    t = ev.get("event_time", _MISSING)
    if t is _MISSING:
        raise _Invalid(".event_time", "is required")
    if type(t) is not int:
        raise _Invalid(".event_time", "must be an integer (Unix time in seconds)")
    if t > now + MAX_FUTURE_SECONDS:
        raise _Invalid(".event_time", f"{t} is in the future: more than {MAX_FUTURE_SECONDS} "
                       f"seconds after the server time {now}", SUBCODE_FUTURE)
    if t < now - max_age:
        days = max_age // 86400
        raise _Invalid(".event_time", f"{t} is too old", SUBCODE_TOO_OLD, text=(
            f"The timestamp for {{at}} is too far in the past. Events need to be sent from "
            f"your server within {days} days of when they occurred. Enter a timestamp that has "
            f"occurred within the last {days} days. ({{at}}.event_time {t} is before "
            f"{now - max_age})"))


def _check_value_currency(obj: dict[str, Any], prefix: str, event_name: str) -> None:
    """Meta's money rules: value > 0, a three-letter currency, each one requiring the other,
    and both required on ``Purchase``."""
    value = obj.get("value", _MISSING)
    currency = obj.get("currency", _MISSING)
    if value is not _MISSING and (not _is_number(value) or value <= 0):
        raise _Invalid(f"{prefix}value", "must be a number greater than 0")
    if currency is not _MISSING and (type(currency) is not str or not _CURRENCY(currency)):
        raise _Invalid(f"{prefix}currency", "must be a three-letter ISO 4217 currency code")
    if event_name == "Purchase" and (value is _MISSING or currency is _MISSING):
        missing = f"{prefix}value" if value is _MISSING else f"{prefix}currency"
        raise _Invalid(missing, "is required: value and currency are required for Purchase "
                       "events", SUBCODE_PURCHASE_VALUE)
    if value is not _MISSING and currency is _MISSING:
        raise _Invalid(f"{prefix}currency", "is required when value is sent")
    if currency is not _MISSING and value is _MISSING:
        raise _Invalid(f"{prefix}value", "is required when currency is sent")


def _check_contents(contents: Any, path: str, price_key: str) -> None:
    if type(contents) is not list or not contents:
        raise _Invalid(path, "must be a non-empty array of objects")
    for j, item in enumerate(contents):
        if type(item) is not dict:
            raise _Invalid(f"{path}[{j}]", "must be an object")
        cid = item.get("id")
        if type(cid) is not str or not cid:
            raise _Invalid(f"{path}[{j}].id", "is required and must be a non-empty string")
        q = item.get("quantity", _MISSING)
        if q is _MISSING:
            raise _Invalid(f"{path}[{j}].quantity", "is required")
        if not _is_number(q) or q <= 0:
            raise _Invalid(f"{path}[{j}].quantity", "must be a number greater than 0")
        price = item.get(price_key, _MISSING)
        if price is not _MISSING and not _is_number(price):
            raise _Invalid(f"{path}[{j}].{price_key}", "must be a number")
        for key in ("title", "brand", "category", "description"):
            if key in item and type(item[key]) is not str:
                raise _Invalid(f"{path}[{j}].{key}", "must be a string")
        if "delivery_category" in item and item["delivery_category"] not in DELIVERY_CATEGORIES:
            raise _Invalid(f"{path}[{j}].delivery_category",
                           "must be one of " + ", ".join(sorted(DELIVERY_CATEGORIES)))


def _check_dpo(ev: dict[str, Any]) -> None:
    """``data_processing_options``: an array of strings; with ``LDU`` the country and state
    integers are required."""
    dpo = ev.get("data_processing_options", _MISSING)
    ldu = False
    if dpo is not _MISSING:
        if type(dpo) is not list or any(type(x) is not str for x in dpo):
            raise _Invalid(".data_processing_options", "must be an array of strings")
        ldu = "LDU" in dpo
    for key in ("data_processing_options_country", "data_processing_options_state"):
        v = ev.get(key, _MISSING)
        if v is _MISSING:
            if ldu:
                raise _Invalid(f".{key}", "is required when data_processing_options "
                               "contains LDU")
        elif type(v) is not int:
            raise _Invalid(f".{key}", "must be an integer")


def _check_known_fields(ev: dict[str, Any], known: frozenset[str], dialect: str) -> None:
    if ev.keys() <= known:
        return
    key = next(k for k in ev if k not in known)
    raise _Invalid(f".{key}", f"is not a valid {dialect} event parameter")


def validate_capi_event(ev: Any, now: int) -> None:
    """Check one Conversions API event; raise ``_Invalid`` naming the first bad field."""
    if type(ev) is not dict:
        raise _Invalid("", "must be a JSON object")
    if "match_keys" in ev:
        raise _Invalid(".match_keys", "is not a valid Conversions API event parameter (it "
                       "belongs to the Offline Conversions API; send user_data)")
    _check_known_fields(ev, CAPI_FIELDS, "Conversions API")
    _check_name(ev)
    source = ev.get("action_source", _MISSING)
    if source is _MISSING:
        raise _Invalid(".action_source", "is required")
    if type(source) is not str or source not in ACTION_SOURCES:
        raise _Invalid(".action_source", "must be one of " + ", ".join(sorted(ACTION_SOURCES)))
    _check_time(ev, now, MAX_AGE_SECONDS if source == "physical_store"
                else MAX_AGE_NON_STORE_SECONDS)
    if "event_id" in ev and type(ev["event_id"]) is not str:
        raise _Invalid(".event_id", "must be a string")
    user_data = ev.get("user_data", _MISSING)
    if user_data is _MISSING:
        raise _Invalid(".user_data", "is required")
    if type(user_data) is not dict or not user_data:
        raise _Invalid(".user_data", "must be an object with at least one customer "
                       "information parameter")
    _check_customer_keys(user_data, ".user_data", CAPI_HASHED, CAPI_RAW, raw_madid=True)
    custom = ev.get("custom_data", _MISSING)
    if custom is _MISSING:
        custom = {}
    elif type(custom) is not dict:
        raise _Invalid(".custom_data", "must be an object")
    _check_value_currency(custom, ".custom_data.", ev["event_name"])
    if "contents" in custom:
        _check_contents(custom["contents"], ".custom_data.contents", "item_price")
    for key in ("order_id", "content_type"):
        if key in custom and type(custom[key]) is not str:
            raise _Invalid(f".custom_data.{key}", "must be a string")
    _check_dpo(ev)


def validate_legacy_event(ev: Any, now: int) -> None:
    """Check one Offline Conversions API event; raise ``_Invalid`` naming the first bad field."""
    if type(ev) is not dict:
        raise _Invalid("", "must be a JSON object")
    if "user_data" in ev:
        raise _Invalid(".user_data", "is not a valid Offline Conversions API event parameter "
                       "(it belongs to the Conversions API; send match_keys)")
    _check_known_fields(ev, LEGACY_FIELDS, "Offline Conversions API")
    match_keys = ev.get("match_keys", _MISSING)
    if match_keys is _MISSING:
        raise _Invalid(".match_keys", "is required")
    if type(match_keys) is not dict or not match_keys:
        raise _Invalid(".match_keys", "must be an object with at least one match key")
    _check_customer_keys(match_keys, ".match_keys", LEGACY_HASHED, LEGACY_RAW, raw_madid=False)
    _check_name(ev)
    _check_time(ev, now, MAX_AGE_SECONDS)
    _check_value_currency(ev, ".", ev["event_name"])
    if "contents" in ev:
        _check_contents(ev["contents"], ".contents", "price")
    if "custom_data" in ev and type(ev["custom_data"]) is not dict:
        raise _Invalid(".custom_data", "must be an object")
    for key in ("order_id", "item_number"):
        if key in ev and type(ev[key]) is not str:
            raise _Invalid(f".{key}", "must be a string")
    _check_dpo(ev)


# --------------------------------------------------------------------------- responses


def _trace_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(9)).decode("ascii")


def _error(code: int, message: str, *, subcode: int | None = None, transient: bool = False,
           kind: str = "OAuthException", user_title: str | None = None,
           user_msg: str | None = None, error_data: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    """A Graph error body: Meta's fields, with ``error_user_*`` and ``error_data`` when set."""
    err: dict[str, Any] = {"message": message, "type": kind, "code": code,
                           "error_subcode": subcode, "is_transient": transient}
    if user_title is not None:
        err["error_user_title"] = user_title
    if user_msg is not None:
        err["error_user_msg"] = user_msg
    if error_data is not None:
        err["error_data"] = error_data
    err["fbtrace_id"] = _trace_id()
    return {"error": err}


class _Reply:
    """What the emulator answers to one request (before faults that drop the answer)."""

    __slots__ = ("events", "headers", "outcome", "payload", "set_id", "status")

    def __init__(self, status: int, payload: Any, outcome: str, *, events: list[Any] | None = None,
                 set_id: str = "", headers: Sequence[tuple[str, str]] = ()) -> None:
        self.status, self.payload, self.outcome = status, payload, outcome
        self.events, self.set_id, self.headers = events, set_id, headers


def _invalid(message: str, subcode: int | None = None) -> _Reply:
    return _Reply(400, _error(100, message, subcode=subcode), "invalid")


def _invalid_event(index: int, bad: _Invalid) -> _Reply:
    """Meta's answer to a request whose event ``index`` is invalid: the short message
    "Invalid parameter", the details (naming ``data[index]``) in ``error_user_msg``, and the
    index in ``error_data.event_index``."""
    return _Reply(400, _error(
        100, "Invalid parameter", subcode=bad.subcode,
        user_title=USER_TITLES.get(bad.subcode, USER_TITLES[SUBCODE_INVALID]),
        user_msg=bad.user_message(index), error_data={"event_index": index}), "invalid")


def _not_found(message: str) -> _Reply:
    return _Reply(400, _error(2500, message), "not_found")


def _parse_params(content_type: str, body: bytes) -> dict[str, Any]:
    """The request's parameters from a JSON, form-encoded or multipart/form-data body."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not ctype and body:
        ctype = "application/json" if body.lstrip()[:1] == b"{" else \
            "application/x-www-form-urlencoded"
    if not body:
        return {}
    if ctype == "application/json" or ctype.endswith("+json"):
        params = json.loads(body, parse_constant=_reject_constant)
        if type(params) is not dict:
            raise ValueError("the JSON body must be an object")
        return params
    if ctype == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        return {k: v[0] for k, v in fields.items()}
    if ctype == "multipart/form-data":
        return _parse_multipart(content_type, body)
    raise ValueError(f"unsupported Content-Type {ctype!r}: send application/json, "
                     "application/x-www-form-urlencoded or multipart/form-data")


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body (file parts are read as text fields)."""
    if "boundary=" not in content_type:
        raise ValueError("multipart/form-data without a boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("malformed multipart/form-data body")
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields:
            continue
        payload = part.get_payload(decode=True)
        fields[name] = (payload if isinstance(payload, bytes) else b"").decode("utf-8")
    return fields


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# --------------------------------------------------------------------------- emulator


_BAD_JSON = object()


def _decode_event(ev: Any) -> Any:
    """An element of ``data``: an object as is, a JSON string decoded (``_BAD_JSON`` when it
    is not JSON)."""
    if type(ev) is not str:
        return ev
    try:
        return json.loads(ev, parse_constant=_reject_constant)
    except ValueError:
        return _BAD_JSON


def _check_versions(versions: Iterable[str]) -> tuple[str, ...]:
    out = tuple(versions)
    for v in out:
        if not re.fullmatch(r"v\d+\.\d+", v):
            raise ValueError(f"API versions look like v25.0, got {v!r}")
    return out




def _loopback(host: str) -> str:
    """``host`` when it is a loopback address; refuse anything else."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None or not ip.is_loopback:
        raise ValueError(f"refusing to bind {host!r}: the emulator listens on loopback only "
                         "(127.0.0.0/8, ::1 or localhost)")
    return host


def _check_rate(name: str, rate: float) -> float:
    rate = float(rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {rate}")
    return rate


class GraphApiEmulator:
    """Meta's ``/{api_version}/{set_id}/events`` endpoint on a loopback port.

    Parameters
    ----------
    host, port : loopback address to bind (``port=0`` picks a free port; see ``url``).
    token : the access token requests must carry (body, query string or Authorization: Bearer).
    now : reference Unix time (seconds) for the event_time window and the served API versions;
        ``None`` = wall clock.
    seed : seed of the fault RNG and of the reject hash; ``None`` draws one (see ``stats()``).
    latency_ms : delay before every answer.
    error_5xx_rate, transient_rate, throttle_rate, reset_before_rate, reset_after_rate :
        per-request probabilities of each fault, checked in the order reset_before, 5xx,
        transient, throttle, reset_after (the first that fires wins).
    reject_rate : share of events rejected as invalid, decided by a hash of
        (seed, event_id or the event's canonical JSON), so a re-sent event is rejected again.
    record : path of a JSON-lines file; each accepted event is appended as
        ``{"set_id": ..., "event": {...}}``.
    verbose : log method, path (without query string) and status to stderr.
    keep_events : keep accepted events in memory for ``accepted_events()`` (counts are kept
        either way).
    app_secret : the app secret; when set, a request's ``appsecret_proof`` (hex HMAC-SHA256 of
        the token keyed by the app secret) must match, else code 100.
    require_app_secret : with ``app_secret``, a request without ``appsecret_proof`` is refused
        too (Meta's "Require App Secret" app setting).
    api_versions : the API versions served; ``None`` = the Marketing API versions Meta serves
        at ``now`` (``MARKETING_API_VERSIONS``). Older versions get Meta's code 2635, newer ones
        code 2500 ("Unknown path components").
    datasets : the dataset (event set) ids that exist; ``None`` = any id. Another id gets
        Meta's 100/33 "Unsupported post request".
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, token: str = DEFAULT_TOKEN,
                 now: int | None = None, seed: int | None = None, latency_ms: float = 0,
                 error_5xx_rate: float = 0.0, transient_rate: float = 0.0,
                 throttle_rate: float = 0.0, reset_before_rate: float = 0.0,
                 reset_after_rate: float = 0.0, reject_rate: float = 0.0,
                 record: str | os.PathLike[str] | None = None, verbose: bool = False,
                 keep_events: bool = True, app_secret: str | None = None,
                 require_app_secret: bool = False, api_versions: Iterable[str] | None = None,
                 datasets: Iterable[str] | None = None) -> None:
        self.host = _loopback(host)
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        if not token:
            raise ValueError("token must be a non-empty string")
        if latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        self._port = int(port)
        self._token = token.encode("utf-8")
        if app_secret is not None and not app_secret:
            raise ValueError("app_secret must be a non-empty string (or None)")
        if require_app_secret and app_secret is None:
            raise ValueError("require_app_secret needs an app_secret")
        self._proof = None if app_secret is None else hmac.new(
            app_secret.encode("utf-8"), self._token, hashlib.sha256).hexdigest()
        self.require_app_secret = require_app_secret
        self.api_versions = None if api_versions is None else _check_versions(api_versions)
        self.datasets = None if datasets is None else frozenset(str(d) for d in datasets)
        self.now = None if now is None else int(now)
        self.seed = random.SystemRandom().randrange(2**32) if seed is None else int(seed)
        self.latency = latency_ms / 1000.0
        self.reset_before_rate = _check_rate("reset_before_rate", reset_before_rate)
        self.error_5xx_rate = _check_rate("error_5xx_rate", error_5xx_rate)
        self.transient_rate = _check_rate("transient_rate", transient_rate)
        self.throttle_rate = _check_rate("throttle_rate", throttle_rate)
        self.reset_after_rate = _check_rate("reset_after_rate", reset_after_rate)
        self.reject_rate = _check_rate("reject_rate", reject_rate)
        self._faults = any((self.reset_before_rate, self.error_5xx_rate, self.transient_rate,
                            self.throttle_rate, self.reset_after_rate))
        self.record_path = None if record is None else os.fspath(record)
        self.verbose = verbose
        self.keep_events = keep_events
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._events_count = 0
        self._counts = dict.fromkeys(("total", *OUTCOMES), 0)
        self._connections = 0
        self._token_in_url = 0
        self._record_file: TextIO | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> GraphApiEmulator:
        """Bind and serve on a background thread; returns ``self``."""
        if self._server is not None:
            return self
        if self.record_path is not None:
            self._record_file = open(self.record_path, "a", encoding="utf-8")
        self._server = _Server((self.host, self._port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="graph-api-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open keep-alive connections and close the record file."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._record_file is not None:
            with self._lock:
                self._record_file.close()
                self._record_file = None

    def __enter__(self) -> GraphApiEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (the port is known after ``start()``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    # ----------------------------------------------------------------- inspection

    def accepted_events(self) -> list[tuple[str, dict[str, Any]]]:
        """``(set_id, event)`` for every accepted event, in arrival order, duplicates kept."""
        with self._lock:
            return list(self._events)

    @property
    def requests(self) -> dict[str, int]:
        """Requests to the events endpoint: ``total`` and one counter per outcome."""
        with self._lock:
            return dict(self._counts)

    @property
    def connections(self) -> int:
        """TCP connections accepted since start (or the last ``reset()``)."""
        with self._lock:
            return self._connections

    @property
    def token_in_url(self) -> int:
        """Requests that carried ``access_token`` in the URL query string (accepted, as Meta
        does; a client should not do it: URLs end up in logs)."""
        with self._lock:
            return self._token_in_url

    def stats(self) -> dict[str, Any]:
        """Counters as served by ``GET /_emulator/stats``."""
        with self._lock:
            return {"requests": dict(self._counts), "connections": self._connections,
                    "events_accepted": self._events_count, "token_in_url": self._token_in_url,
                    "seed": self.seed}

    def reset(self) -> None:
        """Forget accepted events and counters and re-seed the fault RNG (the record file is an
        append-only log and is kept)."""
        with self._lock:
            self._events.clear()
            self._events_count = 0
            self._counts = dict.fromkeys(self._counts, 0)
            self._connections = 0
            self._token_in_url = 0
            self._rng = random.Random(self.seed)

    # ----------------------------------------------------------------- request path

    def _count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def _count(self, outcome: str, *, token_in_url: bool = False) -> None:
        with self._lock:
            self._counts["total"] += 1
            self._counts[outcome] += 1
            if token_in_url:
                self._token_in_url += 1

    def _draw_fault(self) -> tuple[str | None, float]:
        """The fault for this request (or None) and a draw to pick its variant."""
        if not self._faults:
            return None, 0.0
        with self._lock:
            r = self._rng.random
            rolls = (r(), r(), r(), r(), r())
            pick = r()
        if rolls[0] < self.reset_before_rate:
            return "reset_before", pick
        if rolls[1] < self.error_5xx_rate:
            return "error_5xx", pick
        if rolls[2] < self.transient_rate:
            return "transient", pick
        if rolls[3] < self.throttle_rate:
            return "throttled", pick
        if rolls[4] < self.reset_after_rate:
            return "reset_after", pick
        return None, pick

    def _fault_reply(self, fault: str, pick: float, set_id: str) -> _Reply:
        if fault == "error_5xx":
            status = 500 if pick < 0.5 else 503
            return _Reply(status, _error(2, _SERVER_ERROR, transient=True), "error_5xx")
        if fault == "transient":
            status, code, message = _TRANSIENT[int(pick * len(_TRANSIENT))]
            return _Reply(status, _error(code, message, transient=True), "transient")
        code, subcode, message = _THROTTLE[int(pick * len(_THROTTLE))]
        usage = {"call_count": 100, "total_cputime": 100, "total_time": 100}
        if code == 80004:
            header = ("X-Business-Use-Case-Usage", json.dumps({set_id: [{
                "type": "ads_management", **usage, "estimated_time_to_regain_access": 0}]}))
        else:
            header = ("X-App-Usage", json.dumps(usage))
        return _Reply(400, _error(code, message, subcode=subcode, transient=True), "throttled",
                      headers=(header,))

    def _rejected(self, ev: dict[str, Any]) -> bool:
        key = ev.get("event_id")
        if type(key) is not str:
            key = json.dumps(ev, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(f"{self.seed}\x00{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64 < self.reject_rate

    def _now(self) -> int:
        return int(time.time()) if self.now is None else self.now

    def check_version(self, version: str) -> _Reply | None:
        """Meta's answer to a request on an API version it does not serve, or None."""
        live = self.api_versions if self.api_versions is not None else \
            live_versions(self._now())
        if version in live:
            return None
        newest = max(live, key=_version_key) if live else None
        if newest is None or _version_key(version) > _version_key(newest):
            return _Reply(400, _error(2500, f"Unknown path components: /{version}"),
                          "bad_version")
        return _Reply(400, _error(2635, "(#2635) You are calling a deprecated version of the "
                                  f"Ads API. Please update to the latest version: {newest}."),
                      "bad_version")

    def process(self, set_id: str, query: str, content_type: str, body: bytes,
                authorization: str = "") -> _Reply:
        """Validate one events request and say what to answer (no side effects).

        The parameters are the query string's and the body's (the body wins on a clash); the
        token may also come as ``Authorization: Bearer``."""
        query_params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            body_params = _parse_params(content_type, body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _invalid(f"(#100) Could not parse the request body: {exc}")
        params: dict[str, Any] = {**query_params, **body_params}
        token = params.get("access_token")
        if token is None or token == "":
            scheme, _, credentials = authorization.strip().partition(" ")
            if scheme.lower() in ("bearer", "oauth") and credentials.strip():
                token = credentials.strip()
        if token is None or token == "":
            return _Reply(400, _error(104, "An access token is required to request this "
                                      "resource."), "auth")
        if type(token) is not str or not hmac.compare_digest(
                token.encode("utf-8", "replace"), self._token):
            message = "Invalid OAuth access token - Cannot parse access token"
            return _Reply(400, _error(190, message), "auth", headers=(
                ("WWW-Authenticate", f'OAuth "Facebook Platform" "invalid_token" "{message}"'),))
        if self._proof is not None:
            proof = params.get("appsecret_proof")
            if proof is None or proof == "":
                if self.require_app_secret:
                    return _Reply(400, _error(100, "API calls from the server require an "
                                              "appsecret_proof argument",
                                              kind="GraphMethodException"), "auth")
            elif type(proof) is not str or not hmac.compare_digest(
                    proof.encode("utf-8", "replace"), self._proof.encode("ascii")):
                return _Reply(400, _error(100, "Invalid appsecret_proof provided in the API "
                                          "argument", kind="GraphMethodException"), "auth")
        if self.datasets is not None and set_id not in self.datasets:
            return _Reply(400, _error(
                100, f"Unsupported post request. Object with ID '{set_id}' does not exist, "
                f"cannot be loaded due to missing permissions, or does not support this "
                f"operation. {_GRAPH_DOCS}", subcode=SUBCODE_UNKNOWN_OBJECT,
                kind="GraphMethodException"), "unknown_object")
        for key in REQUEST_STRINGS:
            if key in params and type(params[key]) is not str:
                return _invalid(f"(#100) param {key} must be a string")
        data = params.get("data", _MISSING)
        if data is _MISSING:
            return _invalid("(#100) The parameter data is required")
        if type(data) is str:
            try:
                data = json.loads(data, parse_constant=_reject_constant)
            except ValueError:
                return _invalid("(#100) param data must be a JSON-encoded array of events")
        if type(data) is not list:
            return _invalid("(#100) param data must be an array")
        if not data:
            return _invalid("(#100) param data must be a non-empty array")
        events = [_decode_event(ev) for ev in data]
        legacy = type(events[0]) is dict and "match_keys" in events[0]
        limit = LEGACY_LIMIT if legacy else CAPI_LIMIT
        if len(events) > limit:
            api = "Offline Conversions API" if legacy else "Conversions API"
            return _invalid(f"(#100) param data must contain at most {limit} events per "
                            f"request in the {api}; got {len(events)}", SUBCODE_INVALID)
        validate: Callable[[Any, int], None] = (validate_legacy_event if legacy
                                                else validate_capi_event)
        now = self._now()
        reject = self.reject_rate > 0.0
        for i, ev in enumerate(events):
            try:
                if ev is _BAD_JSON:
                    raise _Invalid("", "must be a JSON object or the JSON text of one")
                validate(ev, now)
            except _Invalid as bad:
                return _invalid_event(i, bad)
            if reject and self._rejected(ev):
                return _invalid_event(i, _Invalid(
                    "", "rejected by the emulator (reject-rate)", SUBCODE_INVALID))
        if legacy:
            payload: dict[str, Any] = {"id": set_id, "num_processed_entries": len(events)}
        else:
            payload = {"events_received": len(events), "messages": [],
                       "fbtrace_id": _trace_id()}
        return _Reply(200, payload, "ok", events=events, set_id=set_id)

    def _accept(self, set_id: str, events: list[Any]) -> None:
        lines = None
        if self._record_file is not None:
            lines = "".join(json.dumps({"set_id": set_id, "event": ev}, separators=(",", ":"))
                            + "\n" for ev in events)
        with self._lock:
            if self.keep_events:
                self._events.extend([(set_id, ev) for ev in events])
            self._events_count += len(events)
            if lines is not None and self._record_file is not None:
                self._record_file.write(lines)
                self._record_file.flush()


def _unknown_path(path: str) -> _Reply:
    """Meta's answer to a path that is not ``/{version}/{id}/events``: code 2500 naming the
    path components after the version and object id (the whole path when there are none)."""
    m = _VERSIONED_PATH.fullmatch(path)
    rest = m.group(3) if m is not None and m.group(3) else path
    return _not_found(f"Unknown path components: {rest}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], emulator: GraphApiEmulator) -> None:
        self.emulator = emulator
        self.active: set[socket.socket] = set()
        self.active_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host name (getfqdn): not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[0], self.server_address[1]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.emulator.verbose:
            exc = sys.exception()
            print(f"emulator: connection error: {type(exc).__name__}", file=sys.stderr)

    def close_connections(self) -> None:
        with self.active_lock:
            conns, self.active = list(self.active), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GraphApiEmulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.active_lock:
            self.server.active.add(self.connection)
        self.server.emulator._count_connection()

    def finish(self) -> None:
        with self.server.active_lock:
            self.server.active.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: the base class would log request lines, which may carry a token.
        pass

    # ----------------------------------------------------------------- dispatch

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._send(exc.status, _error(100, f"(#100) {exc}"))
            return
        emulator = self.server.emulator
        match = _EVENTS_PATH.fullmatch(path)
        if match is None:
            if path.startswith("/_emulator/"):
                self._control(path)
                return
            emulator._count("not_found")
            self._send(400, _unknown_path(path).payload)
            return
        version_error = emulator.check_version(match.group(1))
        if version_error is not None:
            emulator._count(version_error.outcome)
            self._send(version_error.status, version_error.payload)
            return
        if self.command != "POST":
            emulator._count("not_found")
            self._send(400, _error(100, f"Unsupported {self.command.lower()} request. "
                                   f"{_GRAPH_DOCS}", kind="GraphMethodException"))
            return
        if emulator.latency:
            time.sleep(emulator.latency)
        fault, pick = emulator._draw_fault()
        set_id = match.group(2)
        token_in_url = "access_token" in parse_qs(query, keep_blank_values=True)
        if fault == "reset_before":
            emulator._count("reset_before", token_in_url=token_in_url)
            self._abort()
            return
        if fault is not None and fault != "reset_after":
            reply = emulator._fault_reply(fault, pick, set_id)
        else:
            reply = emulator.process(set_id, query, self.headers.get("Content-Type", ""), body,
                                     self.headers.get("Authorization", ""))
            if reply.events is not None:
                emulator._accept(reply.set_id, reply.events)
        if fault == "reset_after":
            emulator._count("reset_after", token_in_url=token_in_url)
            self._abort()
            return
        emulator._count(reply.outcome, token_in_url=token_in_url)
        self._send(reply.status, reply.payload, reply.headers)

    def _control(self, path: str) -> None:
        emulator = self.server.emulator
        if path == "/_emulator/events" and self.command == "GET":
            self._send(200, [{"set_id": s, "event": e} for s, e in emulator.accepted_events()])
        elif path == "/_emulator/stats" and self.command == "GET":
            self._send(200, emulator.stats())
        elif path == "/_emulator/reset" and self.command == "POST":
            emulator.reset()
            self._send(200, {"success": True})
        else:
            self._send(400, _unknown_path(path).payload)

    # ----------------------------------------------------------------- I/O

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise _BodyError(400, "Invalid Content-Length") from None
        if n < 0:
            raise _BodyError(400, "Invalid Content-Length")
        if n > MAX_BODY_BYTES:
            raise _BodyError(413, "Request body too large")
        return self.rfile.read(n)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(400, "Invalid chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(413, "Request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> None:
        """One write for head and body (no Nagle stall between them)."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                "Content-Type: application/json; charset=UTF-8\r\n"
                f"Content-Length: {len(body)}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers)
        if self.close_connection:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        data = "".join(head).encode("latin-1")
        self.wfile.write(data if self.command == "HEAD" else data + body)
        if self.server.emulator.verbose:
            path = self.path.partition("?")[0]
            print(f"emulator: {self.command} {path} {status}", file=sys.stderr, flush=True)

    def _abort(self) -> None:
        """Drop the connection without an answer: SO_LINGER 0, so the peer sees a reset."""
        self.close_connection = True
        conn = self.connection
        with self.server.active_lock:
            self.server.active.discard(conn)
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            socket.close(conn.detach())
        except OSError:
            pass
        if self.server.emulator.verbose:
            path = self.path.partition("?")[0]
            print(f"emulator: {self.command} {path} connection reset", file=sys.stderr,
                  flush=True)


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- CLI


_EPILOG = """\
What it accepts (as Meta does): access_token and appsecret_proof in the query string or the
body (JSON, form-encoded or multipart/form-data), or the token as "Authorization: Bearer";
requests with the token in the URL are counted in GET /_emulator/stats as token_in_url. data
as an array of event objects or of JSON strings (one per event). Hashed customer keys (em, ph,
fn, ln, ct, st, zp, country, ge, db, external_id, ... and the legacy email, phone, zip, ...) as
a SHA-256 hash (64 lowercase hex) or a non-empty list of them; capi madid and the legacy
extern_id raw.

What it refuses, with Meta's error bodies (message, type, code, error_subcode,
error_user_title, error_user_msg, error_data, fbtrace_id, is_transient), all HTTP 400:
  190            bad token (104 without one)
  100            wrong appsecret_proof (with --app-secret-env; missing too with
                 --require-app-secret): "Invalid appsecret_proof provided in the API
                 argument" / "API calls from the server require an appsecret_proof argument"
  2635           an API version Meta no longer serves: "(#2635) You are calling a deprecated
                 version of the Ads API. Please update to the latest version: vX.Y."
  2500           unknown path components (also a version newer than any served)
  100/33         a dataset id not in --datasets ("Unsupported post request. Object with ID
                 '<id>' does not exist, cannot be loaded due to missing permissions, or does
                 not support this operation. ...")
  100/2804003    event_time older than 7 days, or 62 days for action_source physical_store
                 (error_user_title "Event Timestamp Too Old")
  100/2804016    a customer key that is not a SHA-256 hash
  100/2804010    a Purchase without value or currency
  100/2804004    event_time more than 60 s in the future
  100/2804050    any other invalid event (unknown fields or action_source, bad types, ...)
One invalid event fails the whole request; message is "Invalid parameter", error_user_msg
names the first invalid event as data[i] and error_data.event_index holds i.

Undocumented by Meta, so the emulator's own choices: the subcodes 2804010, 2804004 and
2804050 and every error_user_title but "Event Timestamp Too Old"; that error_user_msg names
data[i] and that error_data carries event_index (Meta's text says "this event"); the 60 s
future limit; 62 days for the legacy dialect; HTTP 400 and type OAuthException for 2635 and
2500 (Meta may also auto-upgrade a call on an expired version instead of refusing it); that a
version's last day is the day before its expiration date (UTC); that external_id must be
hashed (Meta only recommends it); the checks of the version first, then the token, the
appsecret_proof, the dataset id and the events; the error for a method other than POST;
and that the legacy Offline Conversions dialect is still accepted on every served version
(Meta stopped it after v16.0).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m jobs.tools.local_graph_api",
        description="Local emulator of Meta's Graph API /{set_id}/events endpoint "
                    "(loopback only).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True, help="port to listen on (0: any free)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    p.add_argument("--token", default=None,
                   help=f"access token to accept (default {DEFAULT_TOKEN!r})")
    p.add_argument("--token-env", default=None, metavar="VAR",
                   help="read the access token from this environment variable instead")
    p.add_argument("--app-secret-env", default=None, metavar="VAR",
                   help="read the app secret from this environment variable: a request's "
                        "appsecret_proof (hex HMAC-SHA256 of the token keyed by the app "
                        "secret) must then match")
    p.add_argument("--require-app-secret", action="store_true",
                   help="with --app-secret-env, refuse requests without appsecret_proof too "
                        "(Meta's 'Require App Secret' setting)")
    p.add_argument("--api-versions", default=None, metavar="V,V",
                   help="API versions served, e.g. v25.0,v26.0 (default: the Marketing API "
                        "versions Meta serves at --now, from its published version history: "
                        + ", ".join(f"{v} {r} to {e or 'TBD'}"
                                    for v, (r, e) in MARKETING_API_VERSIONS.items()) + ")")
    p.add_argument("--datasets", default=None, metavar="ID,ID",
                   help="dataset (event set) ids that exist; others get 100/33 (default: any)")
    p.add_argument("--now", type=int, default=None, metavar="EPOCH_SECONDS",
                   help="reference time for the event_time window and the served API "
                        "versions (default: wall clock)")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault injection")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before every answer")
    for name, what in (
        ("error-5xx-rate", "HTTP 500/503, code 2, transient"),
        ("transient-rate", "HTTP 400/500, code 1 or 2, is_transient"),
        ("throttle-rate", "codes 4, 17, 613, 80004"),
        ("reset-before-rate", "connection reset, events not recorded"),
        ("reset-after-rate", "events recorded, then connection reset"),
        ("reject-rate", "per event, deterministic: rejected as invalid (code 100)"),
    ):
        p.add_argument(f"--{name}", type=float, default=0.0, metavar="R",
                       help=f"share of requests (0-1): {what}")
    p.add_argument("--record", default=None, metavar="FILE",
                   help="append accepted events to FILE as JSON lines")
    p.add_argument("--no-keep-events", action="store_true",
                   help="do not keep accepted events in memory (GET /_emulator/events is empty)")
    p.add_argument("--verbose", action="store_true",
                   help="log method, path and status of each request to stderr")
    return p


def _id_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    token = args.token or DEFAULT_TOKEN
    if args.token_env:
        token = os.environ.get(args.token_env, "")
        if not token:
            parser.error(f"environment variable {args.token_env} is empty or not set")
    app_secret = None
    if args.app_secret_env:
        app_secret = os.environ.get(args.app_secret_env, "")
        if not app_secret:
            parser.error(f"environment variable {args.app_secret_env} is empty or not set")
    if args.require_app_secret and app_secret is None:
        parser.error("--require-app-secret needs --app-secret-env")
    try:
        emulator = GraphApiEmulator(
            host=args.host, port=args.port, token=token, now=args.now, seed=args.seed,
            latency_ms=args.latency_ms, error_5xx_rate=args.error_5xx_rate,
            transient_rate=args.transient_rate, throttle_rate=args.throttle_rate,
            reset_before_rate=args.reset_before_rate, reset_after_rate=args.reset_after_rate,
            reject_rate=args.reject_rate, record=args.record, verbose=args.verbose,
            keep_events=not args.no_keep_events, app_secret=app_secret,
            require_app_secret=args.require_app_secret,
            api_versions=_id_list(args.api_versions), datasets=_id_list(args.datasets))
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    emulator.start()
    print(f"listening on {emulator.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
