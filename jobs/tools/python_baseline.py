"""The SPEC's conversion as a plain single-process Python script: the benchmark's comparison.

``python -m jobs.tools.python_baseline --input DUMP --out payloads.jsonl`` reads an mParticle dump
(folders searched recursively, ``.gz`` files decompressed), applies SPEC §1-§8 and, with the
default ``--profile extended``, §9, and writes one payload JSON element per line (sorted by
``event_id|event_name``), then prints the run's counts (SPEC §7) as JSON.

It is written the way a user without Spark would write it: ``json``, ``hashlib``, ``gzip``,
``re``, one process, one core, line by line, no caching tricks. It is not the job: the job is
the reference implementation; this script exists so the benchmark can say how the job compares
with the obvious alternative on the same machine.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import sys
import time
import unicodedata
from collections.abc import Iterator, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import pycountry

SKIP_REASONS = (
    "non_commerce", "no_product_action", "unmapped_action", "missing_timestamp", "future_time",
    "too_old", "invalid_amount", "invalid_currency", "purchase_without_value", "no_match_keys",
    "duplicate",
)
EVENT_NAMES = {
    "capi": {"add_to_cart": "AddToCart", "add_to_wishlist": "AddToWishlist",
             "checkout": "InitiateCheckout", "purchase": "Purchase",
             "view_detail": "ViewContent"},
    "offline_conversions": {"add_to_cart": "AddToCart", "add_to_wishlist": "AddToWishList",
                            "checkout": "Checkout", "purchase": "Purchase",
                            "view_detail": "ViewContent"},
}
#: Meta's standard custom_data parameters: never sent from custom attributes (SPEC §8).
STANDARD_CUSTOM_KEYS = frozenset((
    "value", "net_revenue", "currency", "content_name", "content_category", "content_ids",
    "contents", "content_type", "order_id", "predicted_ltv", "num_items", "status",
    "search_string", "delivery_category", "item_number",
))
WHITE_SPACE = ("\t\n\u000b\u000c\r \u0085\u00a0\u1680"
               + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u2028\u2029\u202f\u205f\u3000")
_WS = re.escape(WHITE_SPACE)
NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?0*[0-9]{1,4})?")
HEX64 = re.compile(r"[0-9a-fA-F]{64}")
EMAIL = re.compile(rf"[^@{_WS}]+@[^@{_WS}]+\.[^@{_WS}]+")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
CURRENCY = re.compile(r"[A-Z]{3}")
VERIFICATION_FILE = re.compile(
    r"^(mParticle_Bucket_Verification_.*\.txt|mparticle_validation\.txt)$", re.IGNORECASE)
NUMBER_MAX = Decimal(10) ** 28  # DECIMAL(38, 10)
MONEY_MAX = Decimal(10) ** 20  # DECIMAL(30, 10)
TEN_PLACES = Decimal("1e-10")


class RawNumber(str):
    """A JSON number kept as its text (the job reads loose fields as text, SPEC §1)."""


def _raw_number(text: str) -> RawNumber:
    return RawNumber(text)


def loads(line: str) -> Any:
    return json.loads(line, parse_int=_raw_number, parse_float=_raw_number,
                      parse_constant=_raw_number)


def as_text(value: Any) -> str | None:
    """A loose field as text: strings as they are, other JSON values as their JSON text."""
    if value is None or isinstance(value, str):
        return value
    return dumps(value)


def _plain(value: Any) -> Any:
    if isinstance(value, RawNumber):
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


# ----- text ----------------------------------------------------------------------------------
def trim(text: str) -> str:
    return text.strip(WHITE_SPACE)


def blank_to_none(text: str | None) -> str | None:
    if text is None:
        return None
    text = trim(text)
    return text or None


def letters_only(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LM")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_unless_hashed(raw: str | None, normalized: str | None) -> str | None:
    if raw is None:
        return None
    trimmed = trim(raw)
    if HEX64.fullmatch(trimmed):
        return trimmed.lower()
    return sha256(normalized) if normalized else None


def to_number(text: str | None) -> Decimal | None:
    """SPEC §8 numbers, as DECIMAL(38, 10) (half-up to 10 places); None when not one."""
    if text is None:
        return None
    text = trim(text)
    if not NUMBER.fullmatch(text):
        return None
    number = Decimal(text).quantize(TEN_PLACES, rounding=ROUND_HALF_UP)
    return number if abs(number) < NUMBER_MAX else None


def as_double(number: Decimal) -> float:
    return float(number)


# ----- countries and states ------------------------------------------------------------------
def _key(text: str) -> str:
    return letters_only(text).upper()


def country_table() -> dict[str, str]:
    countries = sorted(pycountry.countries, key=lambda c: c.alpha_2)
    table: dict[str, str] = {}
    for key, code in ([(c.alpha_2, c.alpha_2) for c in countries]
                      + [(c.alpha_3, c.alpha_2) for c in countries]
                      + [(_key(c.name), c.alpha_2) for c in countries] + [("UK", "GB")]):
        table.setdefault(key, code.lower())
    return table


def us_state_table() -> dict[str, str]:
    return {_key(s.name): s.code.split("-")[1].lower()
            for s in pycountry.subdivisions.get(country_code="US")}  # type: ignore[no-untyped-call]


COUNTRIES = country_table()
US_STATES = us_state_table()
US_HASH = sha256("us")


# ----- batch-level keys (SPEC §4, §6, §9) ----------------------------------------------------
def identity(identities: Any, types: Sequence[str], first_non_blank: bool = False) -> str | None:
    """The first identity of one of ``types`` (inbound object or outbound array)."""
    if isinstance(identities, dict):
        pairs = [(k, as_text(v)) for k, v in identities.items()]
    elif isinstance(identities, list):
        pairs = [(as_text(i.get("identity_type")), as_text(i.get("identity")))
                 for i in identities if isinstance(i, dict)]
    else:
        return None
    for kind, value in pairs:
        if kind in types and value is not None and (not first_non_blank or blank_to_none(value)):
            return value
    return None


def reserved(attributes: Any) -> dict[str, str]:
    """Reserved user attributes by lower-cased name: the first casing wins, list and null
    values are absent (SPEC §8)."""
    found: dict[str, str] = {}
    if not isinstance(attributes, dict):
        return found
    for key, value in attributes.items():
        if not key.startswith("$") or value is None or isinstance(value, list):
            continue
        text = as_text(value)
        assert text is not None
        if text.startswith("["):
            try:
                if isinstance(json.loads(text), list):
                    continue
            except ValueError:
                pass
        found.setdefault(key.lower(), text)
    return found


def email_key(value: str | None) -> str | None:
    if value is None:
        return None
    email = trim(value).lower()
    return hash_unless_hashed(value, email if EMAIL.fullmatch(email) else None)


def madid_of(ios: str | None, android: str | None) -> str | None:
    chosen = ios if blank_to_none(ios) else android
    if chosen is None:
        return None
    uuid = trim(chosen).lower()
    return uuid if UUID.fullmatch(uuid) and uuid != ZERO_UUID else None


def gender_key(value: str | None) -> str | None:
    if value is None:
        return None
    gender = trim(value).lower()
    normalized = {"f": "f", "female": "f", "m": "m", "male": "m"}.get(gender)
    return hash_unless_hashed(value, normalized)


def name_key(value: str | None) -> str | None:
    return None if value is None else hash_unless_hashed(value, letters_only(value.lower()))


def country_code(value: str | None) -> str | None:
    return None if value is None else COUNTRIES.get(_key(value))


def is_california(state: str | None) -> bool:
    return state is not None and letters_only(state).upper() in ("CA", "CALIFORNIA")


def phone_key(value: str | None) -> str | None:
    if value is None:
        return None
    trimmed = trim(value)
    if HEX64.fullmatch(trimmed):
        return trimmed.lower()
    digits = "".join(ch for ch in trimmed if ch not in WHITE_SPACE and ch not in "+-.()/")
    if not (digits.isascii() and digits.isdigit()):
        return None
    digits = digits.lstrip("0")
    return sha256(digits) if 7 <= len(digits) <= 15 else None


def state_key(value: str | None, us_or_absent: bool) -> str | None:
    if value is None:
        return None
    normalized = letters_only(value.lower())
    if us_or_absent:
        normalized = US_STATES.get(normalized.upper(), normalized)
    return hash_unless_hashed(value, normalized)


def zip_key(value: str | None, us_or_absent: bool) -> str | None:
    if value is None:
        return None
    text = "".join(ch for ch in trim(value).lower() if ch not in WHITE_SPACE and ch != "-")
    if us_or_absent and len(text) >= 5 and text[:5].isascii() and text[:5].isdigit():
        text = text[:5]
    valid = len(text) >= 2 and text.isascii() and text.isalnum()
    return hash_unless_hashed(value, text if valid else None)


def external_id_key(value: str | None) -> str | None:
    if value is None:
        return None
    trimmed = trim(value)
    if not trimmed:
        return None
    return trimmed.lower() if HEX64.fullmatch(trimmed) else sha256(trimmed)


def batch_keys(batch: dict[str, Any], settings: argparse.Namespace) -> dict[str, Any]:
    identities = batch.get("user_identities")
    attrs = reserved(batch.get("user_attributes"))
    device: dict[str, Any] = batch.get("device_info") or {}
    if not isinstance(device, dict):
        device = {}
    legacy = settings.dialect == "offline_conversions"
    email_type = settings.email_identity_type.strip().lower()
    types = ["customer_id", "customerid"] if email_type in ("customer_id", "customerid") \
        else [email_type]
    raw_email = identity(identities, types)
    not_forwarded = False
    if email_type == "email":
        em = email_key(raw_email)
    else:
        trimmed = trim(raw_email) if raw_email is not None else None
        em = trimmed.lower() if trimmed is not None and HEX64.fullmatch(trimmed) else None
        not_forwarded = blank_to_none(raw_email) is not None and em is None
    madid = madid_of(as_text(device.get("ios_advertising_id")),
                     as_text(device.get("android_advertising_id")))
    country_raw, state_raw = attrs.get("$country"), attrs.get("$state")
    code = country_code(country_raw)
    keys = {
        "em": em, "madid": sha256(madid) if legacy and madid else madid,
        "ge": gender_key(attrs.get("$gender")), "fn": name_key(attrs.get("$firstname")),
        "ln": name_key(attrs.get("$lastname")), "ct": name_key(attrs.get("$city")),
        "country": hash_unless_hashed(country_raw, code),
    }
    if settings.profile == "extended":
        us_or_absent = keys["country"] in (None, US_HASH)
        phone = None
        for source in (identity(identities, ["mobile_number"], True), attrs.get("$mobile"),
                       identity(identities, ["phone_number_2"], True),
                       identity(identities, ["phone_number_3"], True)):
            if blank_to_none(source):
                phone = source
                break
        ext_type = settings.external_id_type.strip().lower()
        if ext_type == "mpid":
            external = as_text(batch.get("mpid"))
        else:
            ext_types = ["customer_id", "customerid"] if ext_type in (
                "customer_id", "customerid") else [ext_type]
            external = identity(identities, ext_types, True)
        keys.update({"ph": phone_key(phone), "st": state_key(state_raw, us_or_absent),
                     "zp": zip_key(attrs.get("$zip"), us_or_absent),
                     "external_id": external_id_key(external)})
    ldu = False
    if settings.ldu == "always":
        ldu = bool(blank_to_none(country_raw)) and bool(blank_to_none(state_raw))
    elif settings.ldu == "california":
        ldu = is_california(state_raw)
    elif settings.ldu == "ccpa_opt_out":
        consent: Any = batch.get("consent_state")
        try:
            ldu = consent["ccpa"]["data_sale_opt_out"]["consented"] is True
        except (TypeError, KeyError):
            ldu = False
    return {"keys": keys, "not_forwarded": not_forwarded, "ldu": ldu,
            "ldu_us": code == "us", "ldu_ca": is_california(state_raw)}


# ----- one event (SPEC §2, §3, §5, §8, §9) -----------------------------------------------------
def products_of(raw: Any) -> list[dict[str, Any]]:
    out = []
    for p in raw if isinstance(raw, list) else []:
        p = p if isinstance(p, dict) else {}
        price_text = as_text(p.get("price"))
        quantity_text = as_text(p.get("quantity"))
        if quantity_text is None:
            quantity: Decimal | None = Decimal(1)
        else:
            number = to_number(quantity_text)
            quantity = number if number is not None and number > 0 else None
        out.append({"id": blank_to_none(as_text(p.get("id"))), "price": to_number(price_text),
                    "has_price": price_text is not None, "quantity": quantity,
                    "name": p.get("name"), "brand": p.get("brand"),
                    "category": p.get("category")})
    return out


def event_value(total_text: str | None, products: list[dict[str, Any]],
                mode: str) -> Decimal | None:
    if total_text is not None:
        total = to_number(total_text)
        return total if total is not None and abs(total) < MONEY_MAX else None
    priced = [p for p in products if p["price"] is not None
              and (mode != "price_x_quantity" or p["quantity"] is not None)]
    if not priced:
        return None
    acc: Decimal | None = Decimal(0)
    for p in priced:
        price = p["price"] if abs(p["price"]) < MONEY_MAX else None
        if mode == "price_x_quantity" and price is not None:
            quantity = p["quantity"] if abs(p["quantity"]) < MONEY_MAX else None
            price = None if quantity is None else (price * quantity).quantize(
                TEN_PLACES, rounding=ROUND_HALF_UP)
            if price is not None and abs(price) >= MONEY_MAX:
                price = None
        acc = None if acc is None or price is None else acc + price
        if acc is not None and abs(acc) >= MONEY_MAX:
            acc = None
    return acc


def event_time(text: str | None) -> int | None:
    ms = to_number(text)
    if ms is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        seconds = (ms / 1000).quantize(TEN_PLACES, rounding=ROUND_HALF_UP)
        return int(seconds.to_integral_value(rounding=ROUND_FLOOR))


def _quantity_json(q: Decimal) -> float | int:
    value = as_double(q)
    return int(value) if value.is_integer() and abs(value) < 1e16 else value


def payload(settings: argparse.Namespace, keys: dict[str, Any], name: str, seconds: int,
            event_id: str, value: float | None, currency: str, products: list[dict[str, Any]],
            order_id: str | None, custom: Any, bk: dict[str, Any]) -> str:
    legacy = settings.dialect == "offline_conversions"
    extended = settings.profile == "extended" and not legacy
    contents = []
    for p in products:
        if p["id"] is None or p["quantity"] is None:
            continue
        entry: dict[str, Any] = {"id": p["id"], "quantity": _quantity_json(p["quantity"])}
        if p["price"] is not None:
            entry["price" if legacy else "item_price"] = as_double(p["price"])
        if extended:
            for field, source in (("title", "name"), ("brand", "brand"),
                                  ("category", "category")):
                text = p[source]
                if isinstance(text, str) and trim(text):
                    entry[field] = trim(text)
        contents.append(entry)
    dpo: dict[str, Any] = {"data_processing_options": []}
    if bk["ldu"]:
        dpo = {"data_processing_options": ["LDU"],
               "data_processing_options_country": 1 if bk["ldu_us"] else 0,
               "data_processing_options_state": 1000 if bk["ldu_ca"] else 0}
    attrs = custom if isinstance(custom, dict) else {}
    attrs = {k: as_text(v) for k, v in attrs.items()}
    if legacy:
        names = {"em": "email", "madid": "madid", "ge": "gen", "fn": "fn", "ln": "ln",
                 "ct": "ct", "country": "country", "ph": "phone", "st": "st", "zp": "zip",
                 "external_id": "extern_id"}
        element: dict[str, Any] = {
            "match_keys": {names[k]: v for k, v in keys.items() if v is not None},
            "event_name": name, "event_time": seconds,
        }
        if value is not None:
            element.update(currency=currency, value=value)
        if contents:
            element["contents"] = contents
        if order_id is not None:
            element["order_id"] = order_id
        element.update(dpo)
        element["custom_data"] = attrs
        return dumps(element)
    user_data = {k: ([v] if k in ("em", "ph") else v) for k, v in keys.items() if v is not None}
    custom_data: dict[str, Any] = {}
    if value is not None:
        custom_data.update(value=value, currency=currency)
    if contents:
        custom_data["contents"] = contents
        if extended:
            custom_data["content_type"] = "product"
    if order_id is not None:
        custom_data["order_id"] = order_id
    custom_data.update({k: v for k, v in attrs.items() if k not in STANDARD_CUSTOM_KEYS})
    element = {"event_name": name, "event_time": seconds, "event_id": event_id,
               "action_source": "physical_store", "user_data": user_data, **dpo}
    if custom_data:
        element["custom_data"] = custom_data
    return dumps(element)


def convert_event(event: Any, batch_identity: str, position: int, bk: dict[str, Any],
                  settings: argparse.Namespace) -> tuple[str, str | None, str | None]:
    """(skip reason or "", event key, payload) of one event."""
    event = event if isinstance(event, dict) else {}
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    pa = data.get("product_action")
    if event.get("event_type") != "commerce_event":
        return "non_commerce", None, None
    if not isinstance(pa, dict):
        return "no_product_action", None, None
    name = EVENT_NAMES[settings.dialect].get(as_text(pa.get("action")) or "")
    if name is None:
        return "unmapped_action", None, None
    seconds = event_time(as_text(data.get("timestamp_unixtime_ms")))
    if seconds is None:
        return "missing_timestamp", None, None
    if seconds > settings.reference_time + 60:
        return "future_time", None, None
    if seconds < settings.reference_time - settings.max_event_age_days * 86400:
        return "too_old", None, None
    products = products_of(pa.get("products"))
    total_text = as_text(pa.get("total_amount"))
    if (total_text is not None and to_number(total_text) is None) or any(
            p["has_price"] and p["price"] is None for p in products):
        return "invalid_amount", None, None
    currency_text = as_text(data.get("currency_code"))
    currency = settings.default_currency
    if currency_text is not None:
        currency = trim(currency_text).upper()
        if not CURRENCY.fullmatch(currency):
            return "invalid_currency", None, None
    value = event_value(total_text, products, settings.value_mode)
    if name == "Purchase" and not (value is not None and value > 0):
        return "purchase_without_value", None, None
    keys = bk["keys"]
    if all(v is None for v in keys.values()):
        return "no_match_keys", None, None
    event_id = (blank_to_none(as_text(data.get("source_message_id")))
                or blank_to_none(as_text(data.get("event_id")))
                or sha256(f"{batch_identity}#{position}"))
    sent_value = as_double(value) if value is not None and value > 0 else None
    element = payload(settings, keys, name, seconds, event_id, sent_value, currency, products,
                      blank_to_none(as_text(pa.get("transaction_id"))),
                      data.get("custom_attributes"), bk)
    return "", f"{event_id}|{name}", element


# ----- input ---------------------------------------------------------------------------------
def data_files(inputs: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for root in inputs:
        path = Path(root)
        if path.is_file():
            files.append(path)
            continue
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
            for name in sorted(names):
                full = Path(folder) / name
                if name.startswith((".", "_")) or VERIFICATION_FILE.match(name):
                    continue
                if full.stat().st_size > 0:
                    files.append(full)
    return files


def lines_of(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for line in handle:
            yield line.rstrip(b"\r\n")


def quarantine_reason(text: str) -> tuple[str | None, Any]:
    try:
        batch = loads(text)
    except ValueError:
        return "invalid_json", None
    if not isinstance(batch, dict):
        return "not_object", None
    events = batch.get("events")
    if events is not None and not isinstance(events, list):
        return "events_not_array", None
    return None, batch


def run(settings: argparse.Namespace) -> dict[str, Any]:
    counts: dict[str, Any] = {"input_files": 0, "input_lines": 0, "batches": 0, "events": 0,
                              "payloads": 0, "identities_not_forwarded": 0}
    quarantined: dict[str, int] = {}
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    chosen: dict[str, str] = {}
    for path in data_files(settings.input):
        counts["input_files"] += 1
        for raw in lines_of(path):
            text = raw.decode("utf-8", errors="replace")
            if not text.strip(WHITE_SPACE):
                continue
            counts["input_lines"] += 1
            reason, batch = quarantine_reason(text)
            if reason:
                quarantined[reason] = quarantined.get(reason, 0) + 1
                continue
            counts["batches"] += 1
            ids = {k: blank_to_none(as_text(batch.get(k)))
                   for k in ("batch_id", "source_request_id")}
            if ids["batch_id"] is None and ids["source_request_id"] is None:
                batch_identity = hashlib.sha256(raw).hexdigest()
            else:
                batch_identity = dumps({k: v for k, v in (("b", ids["batch_id"]),
                                                          ("r", ids["source_request_id"]))
                                        if v is not None})
            bk = batch_keys(batch, settings)
            for position, event in enumerate(batch.get("events") or []):
                counts["events"] += 1
                counts["identities_not_forwarded"] += bk["not_forwarded"]
                skip, key, element = convert_event(event, batch_identity, position, bk,
                                                   settings)
                if skip:
                    skipped[skip] += 1
                    continue
                assert key is not None and element is not None
                if key in chosen:
                    skipped["duplicate"] += 1
                    chosen[key] = min(chosen[key], element)
                else:
                    chosen[key] = element
    counts["payloads"] = len(chosen)
    counts["candidate_events"] = counts["events"]
    counts["quarantined"] = sum(quarantined.values())
    counts["skipped"] = sum(skipped.values())
    counts.update({f"quarantined.{k}": v for k, v in quarantined.items()})
    counts.update({f"skipped.{k}": v for k, v in skipped.items() if v})
    with open(settings.out, "w", encoding="utf-8") as out:
        for key in sorted(chosen):
            out.write(chosen[key] + "\n")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m jobs.tools.python_baseline",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", action="append", required=True, help="dump file or folder")
    ap.add_argument("--out", required=True, help="payload JSON lines (one element a line)")
    ap.add_argument("--dialect", choices=sorted(EVENT_NAMES), default="capi")
    ap.add_argument("--profile", choices=("extended", "mparticle"), default="extended",
                    help="extended: SPEC §9 keys and contents (default); mparticle: §4 only")
    ap.add_argument("--reference-time", type=int, default=None,
                    help="the run's 'now' in epoch seconds (default: the wall clock)")
    ap.add_argument("--max-event-age-days", type=int, default=62)
    ap.add_argument("--default-currency", default="USD")
    ap.add_argument("--value-mode", choices=("sum_price", "price_x_quantity"),
                    default="sum_price")
    ap.add_argument("--email-identity-type", default="email")
    ap.add_argument("--external-id-type", default="customer_id")
    ap.add_argument("--ldu", choices=("never", "always", "california", "ccpa_opt_out"),
                    default="never")
    settings = ap.parse_args(argv)
    if settings.reference_time is None:
        settings.reference_time = int(time.time())
    settings.default_currency = settings.default_currency.upper()
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    started = time.time()
    counts = run(settings)
    counts["seconds"] = round(time.time() - started, 3)
    print(json.dumps(counts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
