"""Match keys of SPEC §4 / §8 / §9: each builder gives the value to send, or null when the key
is omitted (empty or invalid after normalization).

Hashed keys pass a value that, after trimming, is exactly 64 hex characters through as a hash
(lower-cased, not hashed again); ``madid`` is the exception, it must be a UUID.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from udfs.countries import country_code
from udfs.hashing import hash_unless_hashed, is_sha256_hex, sha256_hex
from udfs.subdivisions import us_subdivision_code
from udfs.text import (
    WHITE_SPACE,
    WHITE_SPACE_CHARS,
    blank_to_null,
    letters_only,
    lower_invariant,
    trim_unicode,
    upper_invariant,
)

_EMAIL = rf"\A[^@{WHITE_SPACE}]+@[^@{WHITE_SPACE}]+\.[^@{WHITE_SPACE}]+\z"
_UUID = r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\z"
#: The IDFA of a device with tracking limited: never a match key.
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
#: SHA-256 of ``us``: the ``country`` key of a US batch (SPEC §4).
US_COUNTRY_KEY = "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"
#: Removed from a phone number before the digit check (SPEC §9).
_PHONE_SEPARATORS = WHITE_SPACE_CHARS + "+-.()/"
_PHONE_DIGITS = r"\A[0-9]{7,15}\z"
_ZIP_REMOVED = WHITE_SPACE_CHARS + "-"
_ZIP = r"\A[a-z0-9]{2,}\z"
_FIVE_DIGITS = r"\A[0-9]{5}"


def hashed_email(col: Column) -> Column:
    """The ``email``/``em`` key: SHA-256 of the trimmed, lower-cased address.

    Valid only as ``[^@\\s]+@[^@\\s]+\\.[^@\\s]+`` with no ``White_Space`` inside (one ``@``, a dot
    in the domain; non-ASCII letters allowed); otherwise null. A 64-hex value passes through
    lower-cased. Null → null.

    Examples
    --------
    >>> spark.range(1).select(hashed_email(F.lit("  Foo.Bar@Example.COM "))).first()[0]
    '00a9fee7604744049b5f777d65021e214480af944b16c1580893c5c6eed2d45a'
    """
    email = lower_invariant(trim_unicode(col))
    return hash_unless_hashed(col, F.when(email.rlike(_EMAIL), email))


def forwarded_identity(col: Column) -> Column:
    """The email key for an Email Type other than ``email`` (SPEC §4): forwarded without hashing,
    so only a value that is already a SHA-256 digest is sent.

    The trimmed value lower-cased when it is exactly 64 hex characters, else null (never plain
    text). Null → null.

    Examples
    --------
    >>> spark.range(1).select(forwarded_identity(F.lit("plain@text.com"))).first()[0] is None
    True
    """
    trimmed = trim_unicode(col)
    return F.when(is_sha256_hex(trimmed), F.lower(trimmed))


def hashed_gender(col: Column) -> Column:
    """The ``gen``/``ge`` key: trim, lower-case; ``f``/``female`` → ``f``, ``m``/``male`` →
    ``m``, then SHA-256; anything else null. A 64-hex value passes through lower-cased.

    Examples
    --------
    >>> spark.range(1).select(hashed_gender(F.lit(" Female "))).first()[0]
    '252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111'
    """
    gender = lower_invariant(trim_unicode(col))
    normalized = (
        F.when(gender.isin("f", "female"), F.lit("f"))
        .when(gender.isin("m", "male"), F.lit("m"))
    )
    return hash_unless_hashed(col, normalized)


def hashed_name(col: Column) -> Column:
    """The ``fn``/``ln``/``ct`` key: lower-case, keep only letters and combining marks of any
    script (no Unicode normalization), then SHA-256; null when nothing is left.

    The 64-hex pass-through is decided on the trimmed raw value, before stripping (stripping
    removes digits). Null → null.

    Examples
    --------
    >>> spark.range(1).select(hashed_name(F.lit("Menlo Park"))).first()[0]
    '0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685'
    """
    return hash_unless_hashed(col, letters_only(lower_invariant(col)))


def hashed_country(col: Column) -> Column:
    """The ``country`` key: SHA-256 of :func:`~udfs.countries.country_code` (alpha-2,
    lower-cased); null for an unknown country. A 64-hex value passes through lower-cased.

    Examples
    --------
    >>> spark.range(1).select(hashed_country(F.lit("USA"))).first()[0]
    '79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621'
    """
    return hashed_country_code(col, country_code(col))


def hashed_country_code(col: Column, code: Column) -> Column:
    """:func:`hashed_country` when ``code`` = :func:`~udfs.countries.country_code` of ``col`` is
    already computed (the lookup is the dearest part of the rule: compute it once per batch)."""
    return hash_unless_hashed(col, code)


def madid(col: Column) -> Column:
    """The mobile advertiser id as sent in capi (unhashed, Meta's rule): the trimmed,
    lower-cased UUID (8-4-4-4-12 hex); null when it is not a UUID or is all zeros (tracking
    limited). A 64-hex value is not a UUID: omitted. Null → null.

    Examples
    --------
    >>> spark.range(1).select(madid(F.lit(" 6D92078A-8246-4BA4-AE5B-76104861E7DC "))).first()[0]
    '6d92078a-8246-4ba4-ae5b-76104861e7dc'
    """
    uuid = lower_invariant(trim_unicode(col))
    return F.when(uuid.rlike(_UUID) & (uuid != F.lit(ZERO_UUID)), uuid)


def hashed_madid(col: Column) -> Column:
    """The legacy dialect's ``madid``: SHA-256 of :func:`madid`; null when that is null.

    Examples
    --------
    >>> spark.range(1).select(
    ...     hashed_madid(F.lit("38400000-8CF0-11BD-B23E-10B96E40000D"))).first()[0]
    'd4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d'
    """
    return sha256_hex(madid(col))


def advertising_id(ios_col: Column, android_col: Column) -> Column:
    """The device's advertising id (SPEC §8): the iOS id unless it is null or blank, else the
    Android id.

    An invalid but non-blank iOS id (e.g. the all-zero IDFA) is still chosen, and :func:`madid`
    then omits it: the Android id is not a fallback for an invalid iOS id. The chosen value is
    returned as it is (not trimmed).

    Examples
    --------
    >>> ios, android = F.lit(" "), F.lit("38400000-8cf0-11bd-b23e-10b96e40000d")
    >>> spark.range(1).select(advertising_id(ios, android)).first()[0]
    '38400000-8cf0-11bd-b23e-10b96e40000d'
    """
    return F.when(is_non_blank(ios_col), ios_col).otherwise(android_col)


def is_california(state_col: Column) -> Column:
    """True when the letters of ``$state``, upper-cased, are ``CA`` or ``CALIFORNIA`` (SPEC §8
    Limited Data Use). Null → null.

    Examples
    --------
    >>> spark.range(1).select(is_california(F.lit("C.A."))).first()[0]
    True
    """
    return upper_invariant(letters_only(state_col)).isin("CA", "CALIFORNIA")


def is_non_blank(col: Column) -> Column:
    """True when the value is not null and not empty after
    :func:`~udfs.text.trim_unicode`. Never null.

    Examples
    --------
    >>> spark.range(1).select(is_non_blank(F.lit("\\u00a0"))).first()[0]
    False
    """
    return blank_to_null(col).isNotNull()


# ----- SPEC §9 -------------------------------------------------------------------------------
def first_non_blank(*sources: Column) -> Column:
    """The first source holding a non-blank value, trimmed (SPEC §9 "first non-blank"); null when
    every source is null or blank. Later sources are not looked at once one is non-blank, even
    when its value then proves invalid.

    Examples
    --------
    >>> spark.range(1).select(first_non_blank(F.lit(" "), F.lit("+1 650"), F.lit("x"))).first()[0]
    '+1 650'
    """
    return F.coalesce(*[blank_to_null(s) for s in sources])


def hashed_phone(col: Column) -> Column:
    """The ``phone``/``ph`` key: trim; a 64-hex value passes through lower-cased; else remove
    ``White_Space`` and ``+ - . ( ) /``, the rest must be ASCII digits, leading zeros go, and
    7 to 15 digits must remain; then SHA-256. No country code is added. Null → null.

    Examples
    --------
    >>> spark.range(1).select(hashed_phone(F.lit("+1 (650) 555-0100"))).first()[0]
    '43b63f22d478442e6d58c9ba5eef8a8b378b9990aafb681d11e231e3ceab6294'
    >>> spark.range(1).select(hashed_phone(F.lit("0044 20 7946 0000"))).first()[0]
    '38e62b3e091778f9214de3aa00ae498aa4b78433d73dec5977eb2ec1c8be4a69'
    """
    digits = F.ltrim(F.translate(col, _PHONE_SEPARATORS, ""), F.lit("0"))
    return hash_unless_hashed(col, F.when(digits.rlike(_PHONE_DIGITS), digits))


def country_is_us_or_absent(country_key: Column) -> Column:
    """True when the batch's §4 ``country`` key (hashed: :func:`hashed_country`) is the digest of
    ``us`` (a passed 64-hex digest of ``us`` included) or is omitted (missing, blank, unmapped
    such as ``XX``): the condition of SPEC §9's state and zip rules. Never null.

    Examples
    --------
    >>> spark.range(1).select(country_is_us_or_absent(F.lit(None).cast("string"))).first()[0]
    True
    """
    return country_key.isNull() | (country_key == F.lit(US_COUNTRY_KEY))


def hashed_state(col: Column, us_or_absent: Column) -> Column:
    """The ``st`` key: letters and marks, lower-cased (as :func:`hashed_name`); when
    ``us_or_absent`` (:func:`country_is_us_or_absent`) and the value is the name of a US state,
    district or outlying area (:func:`~udfs.subdivisions.us_subdivision_code`, compared on
    letters only, case-insensitively), its two-letter code instead; then SHA-256. A 64-hex value
    passes through lower-cased. Null → null.

    Examples
    --------
    >>> spark.range(1).select(hashed_state(F.lit("District of Columbia"), F.lit(True))).first()[0]
    'abecdf3503635c0be9eca61cddf5b25c7f8380d5aae7d73d0f62e9a38c87b70d'
    >>> spark.range(1).select(hashed_state(F.lit("California"), F.lit(False))).first()[0]
    '7e8eea5cc60980270c9ceb75ce8c087d48d726110fd3d17921f774eefd8e18d8'
    """
    letters = letters_only(col)
    code = F.when(us_or_absent, us_subdivision_code(upper_invariant(letters)))
    return hash_unless_hashed(col, F.coalesce(code, lower_invariant(letters)))


def hashed_zip(col: Column, us_or_absent: Column) -> Column:
    """The ``zip``/``zp`` key: trim, lower-case, remove ``White_Space`` and ``-``; when
    ``us_or_absent`` and the value starts with 5 ASCII digits, only those 5; valid only as 2 or
    more ASCII letters and digits; then SHA-256. A 64-hex value passes through lower-cased.
    Null → null.

    Examples
    --------
    >>> spark.range(1).select(hashed_zip(F.lit("94105-1234"), F.lit(True))).first()[0]
    'e73ac16e69f060ee98b0fda5f66f48c4648ee26950e9bab3a097389853fd859e'
    >>> spark.range(1).select(hashed_zip(F.lit("SW1A 1AA"), F.lit(False))).first()[0]
    '830e1d4b9838bab1f5c2acdb23e0b502ff13a9832c4632e8d67a1d43d3b7f614'
    """
    zip_code = lower_invariant(F.translate(col, _ZIP_REMOVED, ""))
    cut = (F.when(us_or_absent & zip_code.rlike(_FIVE_DIGITS), F.substring(zip_code, 1, 5))
           .otherwise(zip_code))
    return hash_unless_hashed(col, F.when(cut.rlike(_ZIP), cut))


def hashed_external_id(col: Column) -> Column:
    """The ``extern_id``/``external_id`` key: trim; a 64-hex value passes through lower-cased;
    else SHA-256 of the trimmed text, case kept. Empty → null; null → null.

    Examples
    --------
    >>> spark.range(1).select(hashed_external_id(F.lit(" C-100042 "))).first()[0]
    '565beb2181a313492f80de718e3ce2c50d974751ff4bb9a9cdb90881c9c2c20d'
    """
    return hash_unless_hashed(col, trim_unicode(col))
