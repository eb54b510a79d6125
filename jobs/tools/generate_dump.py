"""Synthetic mParticle batch dumps with their expected outcome (demo, tests, benchmarks).

``python -m jobs.tools.generate_dump --out DIR --events N`` writes a dump laid out like
mParticle's S3 export (SPEC §1)::

    DIR/_manifest.json                                   what the job must count (not data)
    DIR/mParticle_Bucket_Verification_20260101-000000.txt    ``{}`` (not data)
    DIR/YYYY-MM-DD/<App>_<UTC timestamp>_<5 digits>.txt[.gz]  NDJSON, one batch per line
    DIR/YYYY-MM-DD/<App>_..._<5 digits>.txt                  a zero-byte file (not data)

Both input dialects are mixed batch by batch: *inbound* (``user_identities`` an object, int64s
as JSON numbers) and *outbound* (``user_identities`` an array, int64s as JSON strings).

How the expected outcome is known without re-implementing the mapping: every event is built
from a *plan* (its kind, and at most one defect chosen on purpose), and its reason is the first
reason of SPEC §8's order that the plan contains; only then is the JSON rendered from the plan.
Ordinary events are clean (valid email identity, valid or absent currency, positive prices,
time inside the window), so they are convertible. Defects, each alone on its event:
``missing_timestamp`` (absent or null), ``future_time`` (at least 61 s after the reference time),
``too_old`` (more than 62 days before it), ``invalid_amount`` (a price or ``total_amount`` such as
``"abc"``, ``""``, ``"NaN"``), ``invalid_currency`` (``"US$"``...), ``purchase_without_value``
(no total and no prices, a null total, or a total of 0). ``no_match_keys`` is a batch property
(no email identity, no valid advertising id, no usable reserved attribute, phone, state, zip or
external id; e.g. an invalid email, an all-zero IDFA beside a valid Android id, ``$FirstName``
``"1234"``, list values, a first phone source that is invalid); an event of such a batch counts
there only if no earlier reason applies. Batches whose only keys are SPEC §9's (only a
``customer_id``, a phone identity or ``$Mobile``, a ``$State`` or ``$Zip``) are built at the
same rate: uploaded with the default ``extended`` profile, ``no_match_keys`` with
``mparticle`` (the manifest's ``gained_match_key`` and ``mparticle`` counts). ``duplicate``:
whole batch lines of the previous file are re-delivered (copied byte for byte) into the next one;
a copy of an event that would be uploaded counts as ``duplicate``, a copy of a skipped event under
its skip reason again.

Rates: ``edge_case_rate`` is the share of events given each defect (and of batches without
match keys, and of batches with SPEC §9's keys only); the first batches of file 0 carry one of
each whenever it is > 0.
``bad_line_rate`` is the share of malformed lines (truncated JSON, a top-level array, a bare
string, ``"events": {...}``, in turn), and as many again whitespace-only lines and
``"events": null`` batches; ``duplicate_batch_rate`` the share of re-delivered batches. A file of
at least 20 batches gets at least one of each kind whose rate is > 0.

The manifest assumes the job's default settings for what changes counts
(``max_event_age_days`` 62, ``email_identity_type`` ``email``, ``profile`` ``extended``,
``external_id_type`` ``customer_id``) and a run with
``reference_time`` = the manifest's. Dialect, value mode and LDU mode do not change the counts.

Output is deterministic: the same arguments give the same bytes (per file, independent of the
number of worker processes). Gzip members carry no name and mtime 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from gzip import GzipFile
from pathlib import Path
from typing import Any, BinaryIO

#: 2026-11-05T00:00:00Z: the default reference time, so a generated dump is reproducible.
REFERENCE_TIME = 1_793_836_800
DAY = 86_400
#: Ordinary events fall in the last ``WINDOW_DAYS`` days before the reference time (minus 1 h).
WINDOW_DAYS = 60
#: The job's default ``max_event_age_days`` (SPEC §3); ``too_old`` events are built older.
MAX_EVENT_AGE_DAYS = 62

#: SPEC §8: an event is counted under the first of these that applies.
SKIP_REASONS = (
    "non_commerce", "no_product_action", "unmapped_action", "missing_timestamp", "future_time",
    "too_old", "invalid_amount", "invalid_currency", "purchase_without_value", "no_match_keys",
    "duplicate",
)
#: Quarantine reasons of malformed lines (SPEC §1).
BAD_LINE_REASONS = ("invalid_json", "not_object", "events_not_array")
#: Event-level defects built at ``edge_case_rate`` each, in SPEC §8 order.
EVENT_DEFECTS = (
    "missing_timestamp", "future_time", "too_old", "invalid_amount", "invalid_currency",
    "purchase_without_value",
)
#: Kinds of malformed lines, written in turn: (kind, quarantine reason).
BAD_LINE_KINDS = (
    ("truncated", "invalid_json"),
    ("top_level_array", "not_object"),
    ("bare_string", "not_object"),
    ("events_object", "events_not_array"),
)
VERIFICATION_NAME = "mParticle_Bucket_Verification_20260101-000000.txt"
MANIFEST_NAME = "_manifest.json"
DEFAULT_APP = "AcmeStores"

# RNG streams: every file, batch and extra line has its own seed, so a batch can be rebuilt
# anywhere (a re-delivered copy is rebuilt by the worker of the file that receives it).
_S_SIZES, _S_EXTRAS, _S_BATCH, _S_BAD, _S_NULL, _S_USERS, _S_FILE = range(7)
_MASK64 = (1 << 64) - 1

# Event kinds of a plan.
_MAPPED, _UNMAPPED, _NO_PA, _NON_COMMERCE = range(4)
_KIND_REASON = {_UNMAPPED: "unmapped_action", _NO_PA: "no_product_action",
                _NON_COMMERCE: "non_commerce"}
# Batch sizes (events per batch) as a cumulative distribution: mean about 2.95.
_SIZE_CDF = ((0.02, 0), (0.22, 1), (0.42, 2), (0.64, 3), (0.82, 4), (0.92, 5), (1.0, 6))
_MAPPED_ACTIONS = (  # cumulative weights
    (0.30, "purchase"), (0.55, "add_to_cart"), (0.80, "view_detail"), (0.92, "checkout"),
    (1.0, "add_to_wishlist"),
)
_UNMAPPED_ACTIONS = ("refund", "remove_from_cart", "checkout_option", "click",
                     "remove_from_wish_list", "refund", "remove_from_cart")
_FORCED_NO_KEYS = len(EVENT_DEFECTS)  # forced plan index for the no-match-keys batch
_FORCED_GAINED = _FORCED_NO_KEYS + 1  # and for the batch with SPEC §9's keys only


def _seed(seed: int, file: int, stream: int, index: int = 0) -> int:
    """A distinct non-negative seed per (run seed, file, stream, index)."""
    return ((seed & _MASK64) << 96) | (file << 64) | (stream << 56) | index


def _j(value: Any) -> str:
    """JSON text of one value, UTF-8 kept as is (mParticle writes UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_UUID_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _uuid(rng: random.Random, upper: bool = False) -> str:
    """A random version-4 UUID string."""
    h = f"{rng.getrandbits(128):032x}"
    u = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
    return u.upper() if upper else u


def _int64(rng: random.Random) -> int:
    return rng.getrandbits(64) - (1 << 63)


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


# ----- value pools ----------------------------------------------------------------------------
FIRST_NAMES = (
    "Jane", "John", "José", "Zoë", "François", "Björn", "Łukasz", "Søren", "Mary-Jane", "Anne",
    "D'Angelo", "Ana María", "Jean-Luc", "Владимир", "Αλέξανδρος", "张伟", "さくら", "محمد",
    "דוד", "Nguyễn", "Rene\u0301e", "Siobhán", "Chloé", "Priya", "Olu", "Mateo", "Yuki",
    'Robert "Bob"', "  Anne  ", "Émilie", "Ingrid", "Kwame", "Lena", "Omar", "Sofía", "Tomás",
)
LAST_NAMES = (
    "Doe", "O'Brien", "Smith-Jones", "García Márquez", "Müller", "Øvergaard", "Иванов", "李",
    "山田", "Nguyễn", "van der Berg", "St. John", "O\u2019Connor", "Kowalski", "Dubois",
    "Rossi", "Y\u0131lmaz", "Papadopoulos", "Okafor", "Schmidt", "Tanaka", "Haddad", "Cohen",
    "Johnson Jr.", "Brown", "Silva", "Andersen", "Novák",
)
CITIES = (
    "San Francisco", "New York", "São Paulo", "Zürich", "Kraków", "München", "Москва", "東京",
    "Saint-Étienne", "Winston-Salem", "St. Louis", "Menlo Park", "Los Angeles", "London",
    "Paris", "Austin", "Chicago", "Seattle", "Québec", "Reykjavík", "Berlin", "Madrid",
)
STATES = ("CA", "California", "NY", "TX", "ca", "WA", "Bavaria", "IL", "ON", "Île-de-France",
          "District of Columbia", "new york", "Texas", "Puerto Rico", "C.A.", "Mazowieckie")
COUNTRIES = (
    "US", "USA", "United States", "us", "U.S.", "GB", "UK", "United Kingdom", "DE", "DEU",
    "Germany", "FR", "France", "JP", "BR", "Korea, Republic of", "CA", "ES", "IT", "MX",
)
GENDERS = ("M", "F", "male", "Female", "m", "f", "FEMALE", "Male", "other")
ZIPS = ("94107", "10016", "SW1A 1AA", "75008", "80331", "100-0001", "01310-100", "M5V 2T6",
        "94105-1234", "00-950", "9", " 10016 1234 ")
#: Phone numbers as users type them (SPEC §9); the last two are invalid (too short, letters).
PHONES = ("+1 (650) 555-0100", "0044 20 7946 0000", "555-0100", "+49 30 1234567",
          "(415) 555.0199", "+33 1 23 45 67 89", "12345", "650-555-CALL")
EMAIL_LOCALS = (
    "jane.doe", "john.smith", "jose.garcia", "zoe.m", "f.dubois", "bjorn", "lukasz.k", "soren",
    "maryjane", "anne.w", "dangelo", "ana.maria", "jl.picard", "vladimir", "alex.p", "zhang.wei",
    "sakura", "mohammed", "david.c", "nguyen.t", "renee", "siobhan", "chloe", "priya",
)
EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.net", "example.co.uk",
                 "shop.example", "exämple.de")
CURRENCIES = ('"USD"',) * 12 + ('"EUR"', '"GBP"', '"usd"', '"JPY"', '"CAD"', "null")
BAD_CURRENCIES = ("US$", "DOLLAR", "EU", "€", "840", "U.S.", "EURO", "$", "US D")
BAD_AMOUNTS = ("abc", "", "NaN", "Infinity", "12,50", "$19.99", "N/A", "-", "1.2.3", "0x1A")
CUSTOM_ATTRIBUTES = (
    '{"store_id":"SF-012","register":"4","channel":"in_store"}',
    '{"channel":"pos","cashier":"C-17"}',
    '{"coupon":"FALL10"}',
    '{}',
    "null",
    '{"note":"Gift wrap, \\"fragile\\"","store_id":"NYC-003"}',
    '{"loyalty_points":"120","store_id":"LDN-7"}',
    '{"order_id":"EXT-991","value":"see receipt"}',
    '{"status":"member","content_type":"in store","store_id":"SEA-4"}',
    '{"campaign":"été 2026","store_id":"PAR-2"}',
)
SCREENS = ("Home", "Product Detail", "Cart", "Checkout", "Search Results", "Store Locator")
CUSTOM_EVENTS = (("Store Visit", "location"), ("Search", "search"), ("Share", "social"),
                 ("Button Tap", "navigation"), ("Receipt Scanned", "transaction"))
PROMOTIONS = (
    '{"id":"PROMO-1","name":"Fall Sale","creative":"banner","position":"top"}',
    '{"id":"PROMO-7","name":"Free Shipping","creative":"carousel","position":"2"}',
)

_BASE_PRODUCTS = (
    ("Trail Runner Shoe", "Acme", "Footwear/Running", 8999),
    ("Wool Sock 3-Pack", "Acme", "Apparel/Socks", 1400),
    ("Water Bottle 750ml", "Hydra", "Outdoor/Hydration", 1200),
    ("Café Crème Beans 1kg", "Bonjour", "Grocery/Coffee", 2450),
    ("Über Soft Hoodie", "Nordwind", "Apparel/Tops", 5900),
    ("Kids' Rain Jacket", "Acme", "Apparel/Kids", 3999),
    ('12" Cast Iron Skillet', "Forge & Co", "Home/Kitchen", 4495),
    ("Mjölnir Mug", "Asgard", "Home/Kitchen", 1899),
    ("抹茶 Matcha Tin", "Kyoto Leaf", "Grocery/Tea", 2200),
    ("Ёлочная игрушка", "Zima", "Seasonal/Decor", 650),
    ("Noise-Cancelling Headphones", "Sonique", "Electronics/Audio", 24900),
    ("USB-C Cable 2m", "Volt", "Electronics/Accessories", 999),
    ("Yoga Mat", "Lotus", "Sports/Yoga", 3500),
    ("Gift Card", "Acme", "Gift Cards", 5000),
    ("Concert Ticket - Orchestra", "EXP", "Tickets", 12500),
    ("Espresso Machine", "Bonjour", "Home/Appliances", 39900),
)
_VARIANTS = ("", " - Blue", " - Red", " - Large", " - Small", " - Black")


def _build_products() -> list[tuple[str, str, int]]:
    """``(prefix, prefix_without_trailing_comma, cents)``; the prefix is the product object up to
    ``"price"`` (``{"id":...,"category":...,``)."""
    out = []
    for i, (name, brand, category, cents) in enumerate(_BASE_PRODUCTS):
        for v, variant in enumerate(_VARIANTS):
            sku = f"SKU-{1000 + i * 10 + v}"
            price = cents + v * 100
            prefix = (f'{{"id":{_j(sku)},"name":{_j(name + variant)},"brand":{_j(brand)},'
                      f'"category":{_j(category)},')
            out.append((prefix, prefix[:-1], price))
    # descriptive fields that rich contents leave out (SPEC §9): a JSON number, blank, missing
    for sku, fields, cents in (
        ("SKU-2001", '"name":2001,"brand":" ","category":"Gift Cards"', 2500),
        ("SKU-2002", '"name":" Trail Mix ","brand":true', 650),
    ):
        prefix = f'{{"id":{_j(sku)},{fields},'
        out.append((prefix, prefix[:-1], cents))
    return out


# Batches of users with no usable match key (SPEC §4, §9): each piece is constructed so that no
# key survives normalization, in every Email Type setting and both profiles (with the default
# external id type ``customer_id``). "#N#" is replaced by a number.
_NOKEY_IDS_INBOUND = (
    "",
    ',"user_identities":null',
    ',"user_identities":{}',
    ',"user_identities":{"other":"loyalty-#N#"}',
    ',"user_identities":{"mobile_number":"12345"}',
    # the first phone source is invalid: the later ones are not tried (SPEC §9)
    ',"user_identities":{"email":"jane.doe@localhost","mobile_number":"650-555-CALL",'
    '"phone_number_2":"+1 650 555 0100"}',
    ',"user_identities":{"email":"n/a"}',
    ',"user_identities":{"other":"loyalty-#N#","email":"jane doe@example.com"}',
    ',"user_identities":{"email":null,"customer_id":" \\u00a0"}',
    ',"user_identities":{"email":"jane@@example.com"}',
)
_NOKEY_IDS_OUTBOUND = (
    "",
    ',"user_identities":[]',
    ',"user_identities":[{"identity_type":"other","identity":"C-#N#",'
    '"timestamp_unixtime_ms":"1759300000000","created_this_batch":false}]',
    ',"user_identities":[{"identity_type":"email","identity":"@example.com",'
    '"timestamp_unixtime_ms":"1759300000000","created_this_batch":true}]',
    ',"user_identities":[{"identity_type":"other","identity":"loyalty-#N#",'
    '"timestamp_unixtime_ms":"1759300000000","created_this_batch":false},'
    '{"identity_type":"email","identity":"   ","timestamp_unixtime_ms":"1759300000000",'
    '"created_this_batch":false}]',
    # only zeros: no digit is left, and the later phone source is not tried
    ',"user_identities":[{"identity_type":"mobile_number","identity":"00000000",'
    '"timestamp_unixtime_ms":"1759300000000","created_this_batch":false},'
    '{"identity_type":"phone_number_3","identity":"+1 650 555 0100",'
    '"timestamp_unixtime_ms":"1759300000000","created_this_batch":false}]',
)
_NOKEY_DEVICES = (
    "",
    ',"device_info":{"platform":"web","http_header_user_agent":"Mozilla/5.0 (X11; Linux x86_64)"}',
    # the iOS id is present but invalid (all zeros), so the valid Android id is not used (§8)
    ',"device_info":{"platform":"iOS","ios_advertising_id":"00000000-0000-0000-0000-000000000000",'
    '"android_advertising_id":"3f1c2a9e-0b7d-4a8e-9c55-2f1e7d3b9a10","limit_ad_tracking":true,'
    '"att_authorization_status":"denied"}',
    ',"device_info":{"platform":"Android","ios_advertising_id":"",'
    '"android_advertising_id":"00000000-0000-0000-0000-000000000000","limit_ad_tracking":true}',
    ',"device_info":{"platform":"iOS","ios_advertising_id":'
    '"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}',
    ',"device_info":{"platform":"roku","roku_advertising_id":"c8a1d7e2-5b44-4c1e-9d0a-6f2b8e7c1a33"}',
    ',"device_info":{"platform":"Android","android_advertising_id":"not-a-uuid"}',
)
_NOKEY_ATTRIBUTES = (
    "",
    ',"user_attributes":{}',
    ',"user_attributes":{"loyalty_tier":"silver","signup_source":"pos"}',
    ',"user_attributes":{"$Gender":"unknown","$FirstName":"1234","$LastName":"  ","$City":"\u2014",'
    '"$Country":"Atlantis","$State":"12","$Zip":"9","$Mobile":"555-01"}',
    ',"user_attributes":{"$FirstName":["Jane","J"],"$LastName":["Doe"],"$city":null,'
    '"$country":["US"],"$state":["CA"],"$zip":["94107"]}',
    # keys differing only by case: the first wins (§8), and "42" has no letters
    ',"user_attributes":{"$firstname":"42","$FirstName":"Jane","$gender":"n/a","$zip":"#",'
    '"$MOBILE":"+1 415 555 0123 ext 9"}',
    ',"user_attributes":{"$country":"Narnia","$gender":"X","$Age":"34","vip":null,'
    '"$state":"\u2014"}',
)
# Batches whose only match keys are SPEC §9's: no key of §4 survives, yet a phone, state, zip or
# external id does, so they are convertible with the ``extended`` profile and ``no_match_keys``
# with ``mparticle``. (inbound identities, outbound identities, user attributes); "#N#" as above.
_ID = '"timestamp_unixtime_ms":"1759300000000","created_this_batch":false'
_GAINED = (
    (',"user_identities":{"customer_id":"C-#N#"}',
     ',"user_identities":[{"identity_type":"customer_id","identity":"C-#N#",' + _ID + '}]', ""),
    (',"user_identities":{"customerid":"#N#","email":"n/a"}',
     ',"user_identities":[{"identity_type":"customerid","identity":"#N#",' + _ID + '}]',
     ',"user_attributes":{"$FirstName":"1234"}'),
    (',"user_identities":{"mobile_number":"+1 (650) 555-0100"}',
     ',"user_identities":[{"identity_type":"mobile_number","identity":"+1 (650) 555-0100",'
     + _ID + '}]', ""),
    (',"user_identities":{"mobile_number":" ","phone_number_2":"0044 20 7946 0000"}',
     ',"user_identities":[{"identity_type":"phone_number_2","identity":"0044 20 7946 0000",'
     + _ID + '}]', ""),
    (',"user_identities":{"phone_number_3":"555-0100"}',
     ',"user_identities":[{"identity_type":"phone_number_3","identity":"555-0100",' + _ID + '}]',
     ',"user_attributes":{"$mobile":"\u00a0"}'),
    (',"user_identities":{}', ',"user_identities":[]',
     ',"user_attributes":{"$Mobile":"+1 415 555 0123"}'),
    ("", "", ',"user_attributes":{"$State":"California","$Country":"Atlantis"}'),
    ("", "", ',"user_attributes":{"$state":"District of Columbia"}'),
    ("", "", ',"user_attributes":{"$Zip":94105}'),
    ("", "", ',"user_attributes":{"$ZIP":"94105-1234","$gender":"n/a"}'),
    ("", "", ',"user_attributes":{"$zip":"SW1A 1AA","$country":"XX"}'),
)


@dataclass
class _User:
    mpid: int
    ids_inbound: str
    ids_outbound: str
    attributes: str
    device: str
    application: str
    consent: str


def _build_users(seed: int, count: int) -> list[_User]:
    """A pool of users with a valid email identity (and usually more keys)."""
    rng = random.Random(_seed(seed, 0, _S_USERS))
    rnd = rng.random
    users = []
    for n in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = rng.choice(EMAIL_LOCALS) + (str(rng.randrange(1, 9999)) if rnd() < 0.7 else "")
        if rnd() < 0.05:
            local += "+shop"
        domain = rng.choice(EMAIL_DOMAINS) if rnd() < 0.97 else "bücher.example"
        email = f"{local}@{domain}"
        x = rnd()
        if x < 0.08:
            email = email.title() if rnd() < 0.5 else email.upper()
        elif x < 0.12:
            email = f"  {email} "
        elif x < 0.14:
            email = f"\u00a0{email}\t"
        elif x < 0.16:  # already a SHA-256 digest of the normalized email (passed through, §4)
            email = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        customer = f"C-{100000 + n}"
        cust_key = "customerid" if rnd() < 0.3 else "customer_id"
        created = rng.randrange(1_700_000_000_000, 1_780_000_000_000)
        # phone identities (SPEC §9): mobile_number, sometimes phone_number_2 / _3 as well
        phones: dict[str, str] = {}
        if rnd() < 0.3:
            phones["mobile_number"] = rng.choice(PHONES)
        if rnd() < 0.1:
            phones[rng.choice(("phone_number_2", "phone_number_3"))] = rng.choice(PHONES)
        phones_in = "".join(f",{_j(t)}:{_j(v)}" for t, v in phones.items())
        phones_out = "".join(
            f',{{"identity_type":{_j(t)},"identity":{_j(v)},'
            f'"timestamp_unixtime_ms":"{created}","created_this_batch":false}}'
            for t, v in phones.items())
        if rnd() < 0.8:
            ids_in = (f',"user_identities":{{"{cust_key}":"{customer}","email":{_j(email)}'
                      f'{phones_in}}}')
        else:
            ids_in = f',"user_identities":{{"email":{_j(email)}{phones_in}}}'
        ids_out = (
            f',"user_identities":[{{"identity_type":"customer_id","identity":"{customer}",'
            f'"timestamp_unixtime_ms":"{created}","created_this_batch":false}},'
            f'{{"identity_type":"email","identity":{_j(email)},'
            f'"timestamp_unixtime_ms":"{created + 1000}","created_this_batch":{_j(rnd() < 0.1)}}}'
            f'{phones_out}]'
        )
        style = rng.randrange(3)  # key casing: SDK mixed case, lower case (JSON ref), upper case
        attrs: dict[str, Any] = {}

        def key(mixed: str, _style: int = style) -> str:
            return (mixed, mixed.lower(), mixed.upper())[
                _style if rnd() < 0.7 else rng.randrange(3)]

        if rnd() < 0.85:
            attrs[key("$FirstName")] = first
        if rnd() < 0.85:
            attrs[key("$LastName")] = last
        if rnd() < 0.7:
            attrs[key("$Gender")] = rng.choice(GENDERS)
        if rnd() < 0.75:
            attrs[key("$City")] = rng.choice(CITIES)
        if rnd() < 0.6:
            attrs[key("$State")] = rng.choice(STATES)
        if rnd() < 0.75:
            attrs[key("$Country")] = rng.choice(COUNTRIES)
        if rnd() < 0.5:  # a zip, sometimes as a JSON number (its text is the zip, SPEC §8)
            attrs[key("$Zip")] = rng.choice(ZIPS) if rnd() < 0.85 else rng.randrange(10000, 99999)
        if rnd() < 0.3:
            attrs[key("$Mobile")] = rng.choice(PHONES)
        if rnd() < 0.3:
            attrs["loyalty_tier"] = rng.choice(("gold", "silver", "bronze"))
        if rnd() < 0.2:
            attrs["favorite_categories"] = ["shoes", "coffee"]
        if rnd() < 0.1:
            attrs["vip"] = None
        attributes = f',"user_attributes":{_j(attrs)}' if attrs or rnd() < 0.5 else ""
        device, app = _user_device(rng)
        consent = ""
        if rnd() < 0.25:
            consent = (
                ',"consent_state":{"gdpr":{},"ccpa":{"data_sale_opt_out":{"consented":'
                f'{_j(rnd() < 0.3)},"document":null,"timestamp_unixtime_ms":{created},'
                '"location":null,"hardware_id":null}}}'
            )
        users.append(_User(_int64(rng), ids_in, ids_out, attributes, device, app, consent))
    return users


def _user_device(rng: random.Random) -> tuple[str, str]:
    rnd = rng.random
    x = rnd()
    if x < 0.45:
        y = rnd()
        if y < 0.8:
            idfa = _uuid(rng, upper=True)
        elif y < 0.95:
            idfa = "00000000-0000-0000-0000-000000000000"
        else:
            idfa = ""
        lat = _j(idfa.startswith("0000"))
        extra = rng.choice(('', ',"android_advertising_id":""',
                            ',"android_advertising_id":"00000000-0000-0000-0000-000000000000"'))
        device = (
            f',"device_info":{{"platform":"iOS","os_version":"18.{rng.randrange(7)}",'
            f'"device_model":"iPhone1{rng.randrange(4, 8)},2","ios_advertising_id":"{idfa}",'
            f'"ios_idfv":"{_uuid(rng, upper=True)}","limit_ad_tracking":{lat}{extra},'
            f'"locale_country":"US","is_dst":false}}'
        )
        app = (',"application_info":{"application_name":"Acme Stores","application_version":'
               '"4.2.1","application_build_number":"421","package":"com.acme.stores"}')
    elif x < 0.8:
        gaid = (_uuid(rng) if rnd() < 0.9 else "00000000-0000-0000-0000-000000000000")
        device = (
            f',"device_info":{{"platform":"Android","os_version":"1{rng.randrange(3, 6)}",'
            f'"device_model":"Pixel {rng.randrange(6, 10)}","android_advertising_id":"{gaid}",'
            f'"android_uuid":"{rng.getrandbits(64):016x}","limit_ad_tracking":false}}'
        )
        app = (',"application_info":{"application_name":"Acme Stores","application_version":'
               '"4.2.0","package":"com.acme.stores","os":"Android"}')
    else:
        device = (',"device_info":{"platform":"web","http_header_user_agent":'
                  '"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15"}')
        app = ',"application_info":{"application_name":"Acme Web"}'
    return device, app


# ----- parameters and plans -------------------------------------------------------------------
@dataclass(frozen=True)
class _Params:
    seed: int
    events: int
    reference_time: int
    files: int
    gzip_files: frozenset[int]
    date_folders: bool
    bad_line_rate: float
    edge_case_rate: float
    duplicate_batch_rate: float
    app_name: str
    compresslevel: int

    def file_events(self, file: int) -> int:
        return self.events // self.files + (1 if file < self.events % self.files else 0)

    def file_slice(self, file: int) -> tuple[int, int]:
        """The part of the time window whose batches go into ``file`` (epoch seconds)."""
        start = self.reference_time - WINDOW_DAYS * DAY
        length = WINDOW_DAYS * DAY - 3600
        return (start + length * file // self.files, start + length * (file + 1) // self.files)


def _sizes(p: _Params, file: int) -> list[int]:
    """Events per batch of ``file`` (a 0 is a batch with ``"events": []`` or no events key)."""
    rng = random.Random(_seed(p.seed, file, _S_SIZES))
    rnd = rng.random
    remaining = p.file_events(file)
    out: list[int] = []
    # the first batches of file 0 carry the forced edge cases: they need an event
    forced = _FORCED_GAINED + 1 if (file == 0 and p.edge_case_rate > 0) else 0
    while remaining > 0:
        x = rnd()
        size = next(s for c, s in _SIZE_CDF if x < c)
        if len(out) < forced:
            size = max(size, 1)
        size = min(size, remaining)
        out.append(size)
        remaining -= size
    return out


@dataclass
class _Entry:
    """One line of a file: an original batch, a copy, a malformed, blank or events-null line."""

    kind: str  # batch | copy | bad | blank | null
    index: int = 0  # batch index (batch/copy) or extra-line index (bad/blank/null)
    file: int = 0  # file of the original batch (copy)
    size: int = 0  # events of the batch (batch/copy)
    bad_kind: int = 0


def _layout(p: _Params, file: int) -> list[_Entry]:
    """The lines of ``file`` in order. Extras (malformed, blank, events-null lines and copies of
    batches of the previous file) are drawn between batches at their rates; a file with at least
    20 batches gets at least one of each extra whose rate is > 0."""
    sizes = _sizes(p, file)
    rng = random.Random(_seed(p.seed, file, _S_EXTRAS))
    rnd = rng.random
    donor = (file - 1) % p.files
    donor_sizes = sizes if donor == file else _sizes(p, donor)
    rates = {"bad": p.bad_line_rate, "blank": p.bad_line_rate, "null": p.bad_line_rate,
             "copy": p.duplicate_batch_rate if donor_sizes else 0.0}
    counts = dict.fromkeys(rates, 0)
    last = len(sizes) - 1
    out: list[_Entry] = []
    for j, size in enumerate(sizes):
        out.append(_Entry("batch", j, file, size))
        for kind, rate in rates.items():
            if rate <= 0:
                continue
            # drawn at its rate; forced after the last batch if a large file drew none
            if not (rnd() < rate or (j == last and counts[kind] == 0 and last >= 19)):
                continue
            n = counts[kind]
            counts[kind] += 1
            if kind == "copy":
                dj = rng.randrange(len(donor_sizes))
                out.append(_Entry("copy", dj, donor, donor_sizes[dj]))
            elif kind == "bad":
                out.append(_Entry("bad", n, file, bad_kind=(n + file) % len(BAD_LINE_KINDS)))
            else:
                out.append(_Entry(kind, n, file))
    return out


# ----- rendering ------------------------------------------------------------------------------
class _Renderer:
    """Builds batch lines from plans. One per process; holds the pools and a reusable RNG."""

    def __init__(self, p: _Params) -> None:
        self.p = p
        self.rng = random.Random(0)
        self.products = _build_products()
        self.users = _build_users(p.seed, max(64, min(5_000, p.events // 8)))
        edge = min(1.0, p.edge_case_rate * len(EVENT_DEFECTS))
        self.edge_total = edge
        self.edge_each = edge / len(EVENT_DEFECTS)

    # -- events --------------------------------------------------------------------------------
    def _products(self, n: int, priced: bool, as_string: bool, price_null: bool = False,
                  ) -> tuple[list[str], int]:
        rng = self.rng
        rnd = rng.random
        products = self.products
        out = []
        total = 0
        for _ in range(n):
            prefix, bare, cents = products[int(rnd() * len(products))]
            y = rnd()
            qty = 1 if y < 0.7 else 2 if y < 0.9 else 3 if y < 0.97 else 5
            total += cents * qty
            qtext = f'"{qty}"' if as_string else str(qty)
            q = "" if rnd() < 0.1 and qty == 1 else f'"quantity":{qtext}'
            if priced:
                ptext = f'"{_money(cents)}"' if as_string else _money(cents)
                out.append(f'{prefix}"price":{ptext}{"," + q if q else ""}}}')
            elif price_null:
                out.append(f'{prefix}"price":null{"," + q if q else ""}}}')
            else:
                out.append(f"{prefix}{q}}}" if q else f"{bare}}}")
        return out, total

    def _time(self, ms: int, outbound: bool) -> str:
        return f'"timestamp_unixtime_ms":"{ms}"' if outbound else f'"timestamp_unixtime_ms":{ms}'

    def _common(self, ms: int, outbound: bool, defect: str | None = None) -> list[str]:
        """``timestamp_unixtime_ms`` (unless the defect removes it) and the event ids."""
        rng = self.rng
        rnd = rng.random
        members = []
        if defect == "missing_timestamp":
            if rnd() < 0.3:
                members.append('"timestamp_unixtime_ms":null')
        else:
            members.append(self._time(ms, outbound))
        if outbound:
            members.append(f'"event_id":"{_int64(rng)}"')
        elif rnd() < 0.3:
            members.append(f'"event_id":{_int64(rng)}')
        if rnd() < 0.92:
            members.append(f'"source_message_id":"{_uuid(rng)}"')
        if outbound:
            members.append(f'"session_id":"{_int64(rng)}"')
        return members

    def _mapped(self, ms: int, outbound: bool, defect: str | None) -> tuple[str, str]:
        """A commerce event with a mapped product action; returns (json, action)."""
        rng = self.rng
        rnd = rng.random
        p = self.p
        if defect == "future_time":
            ms = (p.reference_time + rng.randrange(61, 30 * DAY)) * 1000 + rng.randrange(1000)
        elif defect == "too_old":
            oldest = p.reference_time - MAX_EVENT_AGE_DAYS * DAY
            ms = (oldest - rng.randrange(1, 3 * 365 * DAY)) * 1000 + rng.randrange(1000)
        if defect == "purchase_without_value":
            action = "purchase"
        else:
            x = rnd()
            action = next(a for c, a in _MAPPED_ACTIONS if x < c)
        m = self._common(ms, outbound, defect)
        if defect == "invalid_currency":
            m.append(f'"currency_code":{_j(rng.choice(BAD_CURRENCIES))}')
        else:
            x = rnd()
            if x < 0.9:
                m.append(f'"currency_code":{CURRENCIES[int(rnd() * len(CURRENCIES))]}')
        if rnd() < 0.8:
            attributes = CUSTOM_ATTRIBUTES[int(rnd() * len(CUSTOM_ATTRIBUTES))]
            m.append(f'"custom_attributes":{attributes}')
        if rnd() < 0.1:
            m.append(f'"event_name":"eCommerce - {action}","custom_event_type":"{action}"')
        as_string = rnd() < 0.3
        n = 1 if action == "view_detail" and rnd() < 0.8 else 1 + int(rnd() * rnd() * 4)
        pa = [f'"action":"{action}"']
        if action == "purchase" or (action == "checkout" and rnd() < 0.5) or rnd() < 0.05:
            pa.append(f'"transaction_id":"POS-{int(rnd() * 1e9):09d}"')
        if defect == "purchase_without_value":
            variant = rng.randrange(3)
            if variant == 0:  # no total_amount, no prices
                products, _ = self._products(n, priced=False, as_string=as_string)
            elif variant == 1:  # null total, null prices
                pa.append('"total_amount":null')
                products, _ = self._products(n, priced=False, as_string=as_string,
                                             price_null=True)
            else:  # a total of 0 (the value must be > 0)
                pa.append('"total_amount":"0.00"' if as_string else '"total_amount":0')
                products, _ = self._products(n, priced=True, as_string=as_string)
        else:
            priced = action != "view_detail" or rnd() < 0.9
            products, total = self._products(n, priced=priced, as_string=as_string)
            if priced:
                y = rnd()
                present = y < 0.75 if action == "purchase" else y < 0.4
                if present:
                    t = _money(total)
                    pa.append(f'"total_amount":"{t}"' if as_string else f'"total_amount":{t}')
                elif action == "purchase" and y < 0.8:
                    pa.append('"total_amount":null')  # null: the prices are summed
                if action == "purchase" and present and rnd() < 0.3:
                    pa.append(f'"tax_amount":{_money(total // 12)},"shipping_amount":0')
            if defect == "invalid_amount":
                bad = _j(rng.choice(BAD_AMOUNTS))
                if rnd() < 0.5 or not priced:
                    pa = [x for x in pa if not x.startswith('"total_amount"')]
                    pa.append(f'"total_amount":{bad}')
                else:
                    k = rng.randrange(len(products))
                    prefix = products[k][: products[k].index('"price":')]
                    rest = products[k][products[k].index('"price":'):]
                    rest = rest[rest.index(",") if "," in rest else rest.index("}"):]
                    products[k] = f'{prefix}"price":{bad}{rest}'
        pa.append(f'"products":[{",".join(products)}]')
        m.append(f'"product_action":{{{",".join(pa)}}}')
        return self._wrap("commerce_event", m, outbound), action

    def _wrap(self, event_type: str, members: list[str], outbound: bool) -> str:
        data = ",".join(members)
        if outbound:
            return f'{{"data":{{{data}}},"event_type":"{event_type}"}}'
        return f'{{"event_type":"{event_type}","data":{{{data}}}}}'

    def _other(self, kind: int, ms: int, outbound: bool) -> str:
        """A non-candidate event: unmapped product action, promotion/impression, non-commerce."""
        rng = self.rng
        rnd = rng.random
        m = self._common(ms, outbound)
        if kind == _UNMAPPED:
            action = _UNMAPPED_ACTIONS[int(rnd() * len(_UNMAPPED_ACTIONS))]
            m.append('"currency_code":"USD"')
            products, total = self._products(1 + int(rnd() * 2), True, rnd() < 0.3)
            pa = [f'"action":"{action}"']
            if action == "refund":
                pa.append(f'"transaction_id":"POS-{int(rnd() * 1e9):09d}",'
                          f'"total_amount":{_money(total)}')
            elif action == "checkout_option":
                pa.append('"checkout_step":2,"checkout_options":"Visa"')
            pa.append(f'"products":[{",".join(products)}]')
            m.append(f'"product_action":{{{",".join(pa)}}}')
            return self._wrap("commerce_event", m, outbound)
        if kind == _NO_PA:
            if rnd() < 0.3:
                m.append('"product_action":null')
            if rnd() < 0.5:
                m.append(f'"promotion_action":{{"action":"{rng.choice(("view", "click"))}",'
                         f'"promotions":[{PROMOTIONS[int(rnd() * len(PROMOTIONS))]}]}}')
            else:
                products, _ = self._products(1 + int(rnd() * 3), True, False)
                m.append('"product_impressions":[{"product_impression_list":"Search Results",'
                         f'"products":[{",".join(products)}]}}]')
            return self._wrap("commerce_event", m, outbound)
        x = rnd()
        if x < 0.35:
            m.append(f'"screen_name":"{SCREENS[int(rnd() * len(SCREENS))]}"')
            return self._wrap("screen_view", m, outbound)
        if x < 0.7:
            name, ctype = CUSTOM_EVENTS[int(rnd() * len(CUSTOM_EVENTS))]
            m.append(f'"event_name":"{name}","custom_event_type":"{ctype}",'
                     '"custom_attributes":{"source":"app"}')
            return self._wrap("custom_event", m, outbound)
        if x < 0.9:
            m.append(f'"session_uuid":"{_uuid(self.rng, upper=True)}"')
            return self._wrap("session_start", m, outbound)
        m.append(f'"session_duration_ms":{5_000 + int(rnd() * 895_000)}')
        return self._wrap("session_end", m, outbound)

    # -- batches -------------------------------------------------------------------------------
    def batch(self, file: int, index: int, size: int, stream: int = _S_BATCH,
              events_mode: str = "array") -> tuple[str, list[str], bool]:
        """Render batch ``index`` of ``file``: (line, per-event outcome, outbound?).

        An outcome is a skip reason, ``"+" + action`` for an event that would be uploaded, or
        ``"~" + action`` for one uploaded with the ``extended`` profile only (its batch's keys
        are all SPEC §9's: ``no_match_keys`` with ``mparticle``).
        ``events_mode``: ``array``, ``null`` (``"events": null``) or ``object`` (the first event
        as an object: a malformed line).
        """
        p = self.p
        rng = self.rng
        rng.seed(_seed(p.seed, file, stream, index))
        rnd = rng.random
        outbound = rnd() < 0.5
        forced = -1
        if stream == _S_BATCH and file == 0 and p.edge_case_rate > 0:
            forced = index if index <= _FORCED_GAINED else -1
        no_keys = ((rnd() < p.edge_case_rate or forced == _FORCED_NO_KEYS)
                   and forced != _FORCED_GAINED)
        gained = not no_keys and (rnd() < p.edge_case_rate or forced == _FORCED_GAINED)
        start, end = p.file_slice(file)
        ms = (start + int(rnd() * (end - start))) * 1000 + int(rnd() * 1000)
        events: list[str] = []
        outcomes: list[str] = []
        edge_total, edge_each = self.edge_total, self.edge_each
        for k in range(size):
            ms += 1000 + int(rnd() * 90_000)
            x = rnd()
            defect = None
            if k == 0 and 0 <= forced < _FORCED_NO_KEYS:
                kind, defect = _MAPPED, EVENT_DEFECTS[forced]
            elif k == 0 and forced in (_FORCED_NO_KEYS, _FORCED_GAINED):
                kind = _MAPPED
            elif x < edge_total:
                kind = _MAPPED
                defect = EVENT_DEFECTS[min(int(x / edge_each), len(EVENT_DEFECTS) - 1)]
            else:
                y = rnd()
                kind = (_MAPPED if y < 0.64 else _UNMAPPED if y < 0.72
                        else _NO_PA if y < 0.78 else _NON_COMMERCE)
            if kind == _MAPPED:
                text, action = self._mapped(ms, outbound, defect)
                # the first reason of SPEC §8 in this plan: the defect, else the batch's keys
                # ("~": uploaded with the extended profile only, no_match_keys with mparticle)
                outcomes.append(defect or ("no_match_keys" if no_keys
                                           else ("~" if gained else "+") + action))
            else:
                text = self._other(kind, ms, outbound)
                outcomes.append(_KIND_REASON[kind])
            events.append(text)
        if events_mode == "null":
            events_member = '"events":null'
        elif events_mode == "object":
            events_member = f'"events":{events[0]}'
        elif size == 0 and rnd() < 0.4:
            events_member = ""
        else:
            events_member = f'"events":[{",".join(events)}]'
        received = ms + 1_000 + int(rnd() * 599_000)
        if no_keys:
            n = str(rng.randrange(1, 99_999))
            pool = _NOKEY_IDS_OUTBOUND if outbound else _NOKEY_IDS_INBOUND
            ids = pool[int(rnd() * len(pool))].replace("#N#", n)
            attributes = _NOKEY_ATTRIBUTES[int(rnd() * len(_NOKEY_ATTRIBUTES))]
            device = _NOKEY_DEVICES[int(rnd() * len(_NOKEY_DEVICES))]
            mpid, app, consent = _int64(rng), "", ""
        elif gained:
            n = str(rng.randrange(1, 99_999))
            ids_in, ids_out, attributes = _GAINED[int(rnd() * len(_GAINED))]
            ids = (ids_out if outbound else ids_in).replace("#N#", n)
            device = _NOKEY_DEVICES[int(rnd() * len(_NOKEY_DEVICES))]
            mpid, app, consent = _int64(rng), "", ""
        else:
            u = self.users[int(rnd() * len(self.users))]
            ids = u.ids_outbound if outbound else u.ids_inbound
            attributes, device, app, consent, mpid = (
                u.attributes, u.device, u.application, u.consent, u.mpid)
        request = _uuid(rng)
        if outbound:
            head = f"{{{events_member}," if events_member else "{"
            return (
                f'{head}"source_request_id":"{request}","source_info":{{"channel":'
                f'"server_to_server","is_historical":false}},"batch_id":"{_int64(rng)}",'
                f'"mpid":"{mpid}","timestamp_unixtime_ms":"{received}","schema_version":2,'
                f'"environment":"production"{ids}{attributes}{device}{app}{consent}}}'
            ), outcomes, True
        env = "production" if rnd() < 0.97 else "development"
        schema = ',"schema_version":2' if rnd() < 0.7 else ""
        mpid_member = f',"mpid":{mpid}' if rnd() < 0.9 else ""
        tail = f",{events_member}}}" if events_member else "}"
        return (
            f'{{"environment":"{env}"{schema},"source_request_id":"{request}"{mpid_member}'
            f"{ids}{attributes}{device}{app}{consent}{tail}"
        ), outcomes, False

    def bad_line(self, file: int, index: int, bad_kind: int) -> str:
        """A malformed line of the given kind (see ``BAD_LINE_KINDS``)."""
        kind = BAD_LINE_KINDS[bad_kind][0]
        if kind == "events_object":
            line, _, _ = self.batch(file, index, 1, stream=_S_BAD, events_mode="object")
            return line
        line, _, _ = self.batch(file, index, 1 + index % 3, stream=_S_BAD)
        rng = self.rng  # seeded by batch() above: still deterministic
        if kind == "truncated":
            if rng.random() < 0.1:
                return "HTTP/1.1 503 Service Unavailable"
            return line[: rng.randrange(len(line) // 4, len(line) - 1)]  # a proper prefix
        if kind == "top_level_array":
            return f"[{line}]" if rng.random() < 0.8 else f"[{line},{line}]"
        return rng.choice(('"{\\"events\\":[]}"', '"OK"', '"batch rejected: quota"'))


# ----- writing --------------------------------------------------------------------------------
def _file_name(p: _Params, file: int) -> tuple[str, str]:
    """(date folder, file name) of data file ``file``."""
    rng = random.Random(_seed(p.seed, file, _S_FILE))
    start, end = p.file_slice(file)
    forwarded = end + rng.randrange(60, 3600)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(forwarded)) + f"{rng.randrange(10**6):06d}"
    name = f"{p.app_name}_{stamp}_{rng.randrange(10**5):05d}.txt"
    if file in p.gzip_files:
        name += ".gz"
    return time.strftime("%Y-%m-%d", time.gmtime(start)), name


def _relative_path(p: _Params, folder: str, name: str) -> str:
    return f"{folder}/{name}" if p.date_folders else name


_BLANKS = (" ", "\t", "  \t ", "\u00a0", " \u3000 ")


_RENDERERS: dict[_Params, _Renderer] = {}


def _renderer(p: _Params) -> _Renderer:
    """One renderer (user pool included) per process and parameter set."""
    if p not in _RENDERERS:
        _RENDERERS.clear()
        _RENDERERS[p] = _Renderer(p)
    return _RENDERERS[p]


def _write_file(args: tuple[_Params, str, int]) -> dict[str, Any]:
    """Write data file ``file``; return its counts. Runs in a worker process."""
    p, out_dir, file = args
    renderer = _renderer(p)
    folder, name = _file_name(p, file)
    rel = _relative_path(p, folder, name)
    path = Path(out_dir) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    reasons = dict.fromkeys(SKIP_REASONS, 0)
    by_action: dict[str, int] = {}
    gained = gained_copies = 0  # events uploaded (or duplicate) thanks to SPEC §9's keys alone
    stats: dict[str, Any] = {
        "path": rel, "gzip": file in p.gzip_files, "lines": 0, "batches": 0,
        "bad_lines": dict.fromkeys(BAD_LINE_REASONS, 0), "whitespace_lines": 0, "events": 0,
        "inbound_batches": 0, "outbound_batches": 0, "events_null_batches": 0,
        "duplicate_batches": 0,
    }
    digest = hashlib.sha256()
    buffer: list[str] = []
    with ExitStack() as stack:
        sink: BinaryIO | GzipFile = stack.enter_context(open(path, "wb"))
        if stats["gzip"]:
            sink = stack.enter_context(GzipFile(filename="", mode="wb", fileobj=sink,
                                                compresslevel=p.compresslevel, mtime=0))

        def flush() -> None:
            chunk = ("\n".join(buffer) + "\n").encode()
            digest.update(chunk)
            sink.write(chunk)
            buffer.clear()

        for entry in _layout(p, file):
            if entry.kind == "bad":
                buffer.append(renderer.bad_line(file, entry.index, entry.bad_kind))
                stats["bad_lines"][BAD_LINE_KINDS[entry.bad_kind][1]] += 1
                stats["lines"] += 1
            elif entry.kind == "blank":  # not an input line (SPEC §8)
                buffer.append(_BLANKS[entry.index % len(_BLANKS)])
                stats["whitespace_lines"] += 1
            else:
                if entry.kind == "null":
                    line, outcomes, outbound = renderer.batch(
                        file, entry.index, 0, stream=_S_NULL, events_mode="null")
                    stats["events_null_batches"] += 1
                else:
                    line, outcomes, outbound = renderer.batch(entry.file, entry.index, entry.size)
                copy = entry.kind == "copy"
                buffer.append(line)
                stats["lines"] += 1
                stats["batches"] += 1
                stats["duplicate_batches"] += copy
                stats["outbound_batches" if outbound else "inbound_batches"] += 1
                stats["events"] += len(outcomes)
                for outcome in outcomes:
                    if outcome[0] not in "+~":
                        reasons[outcome] += 1
                        continue
                    gained += outcome[0] == "~"
                    gained_copies += outcome[0] == "~" and copy
                    if copy:
                        reasons["duplicate"] += 1
                    else:
                        by_action[outcome[1:]] = by_action.get(outcome[1:], 0) + 1
            if len(buffer) >= 2000:
                flush()
        if buffer:
            flush()
    stats["content_sha256"] = digest.hexdigest()
    stats["reasons"] = reasons
    stats["convertible_by_action"] = by_action
    stats["gained_match_key"] = gained
    stats["gained_duplicates"] = gained_copies
    return stats


@dataclass
class Manifest:
    """What a run of the job over the dump must count (SPEC §7, §8), with the default settings
    and ``reference_time``. ``events`` = ``sum(expected)`` + ``convertible``;
    ``input_lines`` = ``batches`` + ``sum(bad_lines)``."""

    reference_time: int
    input_lines: int
    bad_lines: dict[str, int]
    batches: int
    events: int
    expected: dict[str, int]
    convertible: int
    convertible_by_action: dict[str, int] = field(default_factory=dict)
    whitespace_lines: int = 0
    inbound_batches: int = 0
    outbound_batches: int = 0
    events_null_batches: int = 0
    duplicate_batches: int = 0
    #: Events (copies included) that only SPEC §9's keys make uploadable: the job's
    #: ``gained_match_key`` count with the default ``extended`` profile.
    gained_match_key: int = 0
    #: ``expected`` and ``convertible`` with ``profile: mparticle`` (the §9 keys not sent).
    mparticle: dict[str, Any] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    not_data: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    assumptions: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read a ``_manifest.json`` (a dump folder or the file itself)."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def _gzip_set(gzip: bool | int, files: int) -> frozenset[int]:
    """Which files are compressed: all (``True``), none, or ``n`` of them (odd indices first)."""
    if gzip is True:
        return frozenset(range(files))
    n = int(gzip)
    order = list(range(1, files, 2)) + list(range(0, files, 2))
    return frozenset(order[:n])


def generate_dump(out_dir: str | os.PathLike[str], events: int, seed: int = 0,
                  reference_time: int = REFERENCE_TIME, files: int = 4,
                  gzip: bool | int = False, date_folders: bool = True,
                  bad_line_rate: float = 0.001, edge_case_rate: float = 0.02,
                  duplicate_batch_rate: float = 0.005, app_name: str = DEFAULT_APP,
                  compresslevel: int = 1, workers: int | None = None,
                  overwrite: bool = False) -> Manifest:
    """Write a synthetic dump of ``events`` original events into ``out_dir``.

    ``events`` counts the events of the original batches (exactly); re-delivered copies add
    theirs, so ``Manifest.events`` is a little larger. ``gzip``: ``True`` compresses every file,
    an int ``n`` compresses ``n`` of them. ``edge_case_rate`` is the share of events given each
    defect (and of batches without match keys); ``bad_line_rate`` the share of lines that are
    malformed (and, as many again, whitespace-only and ``"events": null`` lines). ``workers``
    processes write files in parallel (default: one per CPU, one for small dumps); the bytes do
    not depend on it. ``overwrite`` first removes a previous dump (a folder with a manifest).

    Examples
    --------
    A dump of 3,000 events whose manifest adds up::

        m = generate_dump("/tmp/dump", 3000, seed=1)
        assert m.events == sum(m.expected.values()) + m.convertible
    """
    if events < 0 or files < 1:
        raise ValueError("events must be >= 0 and files >= 1")
    for name, rate in (("bad_line_rate", bad_line_rate), ("edge_case_rate", edge_case_rate),
                       ("duplicate_batch_rate", duplicate_batch_rate)):
        if not 0 <= rate <= 1:
            raise ValueError(f"{name} must be between 0 and 1")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (overwrite and (out / MANIFEST_NAME).is_file()):
            raise FileExistsError(
                f"{out} is not empty (use overwrite=True / --overwrite to replace a dump)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    p = _Params(seed=seed, events=events, reference_time=int(reference_time), files=files,
                gzip_files=_gzip_set(gzip, files), date_folders=date_folders,
                bad_line_rate=bad_line_rate, edge_case_rate=edge_case_rate,
                duplicate_batch_rate=duplicate_batch_rate, app_name=app_name,
                compresslevel=compresslevel)
    if workers is None:
        workers = 1 if events < 200_000 else min(files, os.cpu_count() or 1)
    jobs = [(p, str(out), f) for f in range(files)]
    if workers > 1 and files > 1:
        # spawn: safe even when the caller runs threads (a Spark driver, a notebook)
        with multiprocessing.get_context("spawn").Pool(min(workers, files)) as pool:
            stats = pool.map(_write_file, jobs, chunksize=1)
    else:
        stats = [_write_file(job) for job in jobs]

    first_folder, _ = _file_name(p, 0)
    rng = random.Random(_seed(seed, files, _S_FILE))
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(p.file_slice(0)[1] + 30))
    empty_name = f"{app_name}_{stamp}000000_{rng.randrange(10**5):05d}.txt"
    empty = _relative_path(p, first_folder, empty_name)
    (out / empty).parent.mkdir(parents=True, exist_ok=True)
    (out / empty).write_bytes(b"")
    (out / VERIFICATION_NAME).write_text("{}", encoding="utf-8")

    expected = dict.fromkeys(SKIP_REASONS, 0)
    bad = dict.fromkeys(BAD_LINE_REASONS, 0)
    by_action: dict[str, int] = {}
    gained = gained_copies = 0
    totals = dict.fromkeys(("lines", "batches", "events", "whitespace_lines", "inbound_batches",
                            "outbound_batches", "events_null_batches", "duplicate_batches"), 0)
    for s in stats:
        for key in totals:
            totals[key] += s[key]
        for key, n in s.pop("reasons").items():
            expected[key] += n
        for key, n in s["bad_lines"].items():
            bad[key] += n
        for key, n in s.pop("convertible_by_action").items():
            by_action[key] = by_action.get(key, 0) + n
        gained += s.pop("gained_match_key")
        gained_copies += s.pop("gained_duplicates")
    convertible = sum(by_action.values())
    mparticle_expected = {**expected, "no_match_keys": expected["no_match_keys"] + gained,
                          "duplicate": expected["duplicate"] - gained_copies}
    settings = {
        "events": events, "seed": seed, "reference_time": p.reference_time, "files": files,
        "gzip_files": sorted(p.gzip_files), "date_folders": date_folders,
        "bad_line_rate": bad_line_rate, "edge_case_rate": edge_case_rate,
        "duplicate_batch_rate": duplicate_batch_rate, "app_name": app_name,
        "compresslevel": compresslevel,
    }
    manifest = Manifest(
        reference_time=p.reference_time,
        input_lines=totals["lines"],
        bad_lines=bad,
        batches=totals["batches"],
        events=totals["events"],
        expected=expected,
        convertible=convertible,
        convertible_by_action=dict(sorted(by_action.items())),
        whitespace_lines=totals["whitespace_lines"],
        inbound_batches=totals["inbound_batches"],
        outbound_batches=totals["outbound_batches"],
        events_null_batches=totals["events_null_batches"],
        duplicate_batches=totals["duplicate_batches"],
        gained_match_key=gained,
        mparticle={"expected": mparticle_expected,
                   "convertible": convertible - (gained - gained_copies)},
        files=stats,
        not_data=sorted([MANIFEST_NAME, VERIFICATION_NAME, empty]),
        settings=settings,
        assumptions={
            "max_event_age_days": MAX_EVENT_AGE_DAYS, "email_identity_type": "email",
            "profile": "extended", "external_id_type": "customer_id",
            "future_tolerance_seconds": 60,
            "note": "counts hold for both dialects, both value modes and every LDU mode; "
                    "'mparticle' holds the counts with profile mparticle",
        },
    )
    (out / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


# ----- command line ---------------------------------------------------------------------------
def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1 or math.isnan(value):
        raise argparse.ArgumentTypeError("a rate is between 0 and 1")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m jobs.tools.generate_dump",
        description="Write a synthetic mParticle batch dump and its expected counts "
                    "(_manifest.json).")
    ap.add_argument("--out", required=True, help="output folder (created; must be empty)")
    ap.add_argument("--events", type=int, required=True, help="events in the original batches")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference-time", type=int, default=REFERENCE_TIME,
                    help=f"epoch seconds (default {REFERENCE_TIME} = 2026-11-05T00:00:00Z)")
    ap.add_argument("--files", type=int, default=4, help="data files (default 4)")
    gz = ap.add_mutually_exclusive_group()
    gz.add_argument("--gzip", action="store_true", help="gzip every data file")
    gz.add_argument("--gzip-files", type=int, default=0, metavar="N",
                    help="gzip N of the data files (odd-numbered first)")
    ap.add_argument("--compresslevel", type=int, default=1, choices=range(1, 10),
                    help="gzip level (default 1: fast; the bytes depend on it)")
    ap.add_argument("--date-folders", action=argparse.BooleanOptionalAction, default=True,
                    help="put files in YYYY-MM-DD folders (default on)")
    ap.add_argument("--bad-line-rate", type=_rate, default=0.001)
    ap.add_argument("--edge-case-rate", type=_rate, default=0.02)
    ap.add_argument("--duplicate-batch-rate", type=_rate, default=0.005)
    ap.add_argument("--app-name", default=DEFAULT_APP)
    ap.add_argument("--workers", type=int, default=None,
                    help="writer processes (default: one per CPU for large dumps)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace an existing dump (a folder holding _manifest.json)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    m = generate_dump(
        args.out, args.events, seed=args.seed, reference_time=args.reference_time,
        files=args.files, gzip=True if args.gzip else args.gzip_files,
        date_folders=args.date_folders, bad_line_rate=args.bad_line_rate,
        edge_case_rate=args.edge_case_rate, duplicate_batch_rate=args.duplicate_batch_rate,
        app_name=args.app_name, compresslevel=args.compresslevel, workers=args.workers,
        overwrite=args.overwrite,
    )
    elapsed = time.perf_counter() - started
    skipped = ", ".join(f"{k} {v}" for k, v in m.expected.items() if v)
    print(f"wrote {args.out}: {len(m.files)} files, {m.input_lines} lines "
          f"({m.batches} batches, {sum(m.bad_lines.values())} malformed), {m.events} events: "
          f"{m.convertible} convertible; {skipped} ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
