"""udfs/match_keys.py: every match key of SPEC §4 / §8 / §9, and the SPEC's hash vectors."""

from __future__ import annotations

import hashlib
import unicodedata

from chispa import assert_column_equality
from pyspark.sql import functions as F

from udfs.match_keys import (
    US_COUNTRY_KEY,
    ZERO_UUID,
    advertising_id,
    country_is_us_or_absent,
    first_non_blank,
    forwarded_identity,
    hashed_country,
    hashed_email,
    hashed_external_id,
    hashed_gender,
    hashed_madid,
    hashed_name,
    hashed_phone,
    hashed_state,
    hashed_zip,
    is_california,
    is_non_blank,
    madid,
)

S = "s string, expected string"
H = hashlib.sha256(b"someone@example.com").hexdigest()
IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
GAID = "38400000-8cf0-11bd-b23e-10b96e40000d"

# SPEC §4 vectors, literally
SPEC_EMAIL = "00a9fee7604744049b5f777d65021e214480af944b16c1580893c5c6eed2d45a"
SPEC_MENLO_PARK = "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685"
SPEC_US = "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"
SPEC_F = "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"
SPEC_M = "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def name_rule(text: str) -> str | None:
    """SPEC §4 name rule in plain Python: lower-case, keep categories L and M, hash."""
    kept = "".join(ch for ch in text.lower() if unicodedata.category(ch)[0] in "LM")
    return sha(kept) if kept else None


def check(spark, rows, builder, schema=S):
    df = spark.createDataFrame(rows, schema).withColumn("actual", builder(F.col("s")))
    assert_column_equality(df, "actual", "expected")


def test_spec_vectors_agree_with_hashlib():
    assert sha("foo.bar@example.com") == SPEC_EMAIL
    assert sha("menlopark") == SPEC_MENLO_PARK
    assert sha("us") == SPEC_US
    assert (sha("f"), sha("m")) == (SPEC_F, SPEC_M)


def test_hashed_email(spark):
    check(spark, [
        (None, None),
        ("  Foo.Bar@Example.COM ", SPEC_EMAIL),
        ("\u00a0\u3000 Foo.Bar@Example.COM\t\u202f", SPEC_EMAIL),
        ("\u2007foo.bar@example.com\r\n", SPEC_EMAIL),
        ("User+Tag@Sub.Example.co.uk", sha("user+tag@sub.example.co.uk")),
        ("José@Exämple.com", sha("josé@exämple.com")),  # non-ASCII letters allowed
        ("İLKER@EXAMPLE.COM", sha("i\u0307lker@example.com")),  # root-locale lower case
        ("a@b..c", sha("a@b..c")),  # the SPEC's pattern allows it
        ("王@例子.中国", sha("王@例子.中国")),
        # invalid: omitted
        ("not-an-email", None), ("a@b", None), ("a@@b.com", None), ("a@b@c.com", None),
        ("a b@c.com", None), ("a\u00a0b@c.com", None), ("a@b.c om", None), ("a\tb@c.com", None),
        ("@b.com", None), ("a@.com", None), ("a@b.", None), ("a@", None), ("", None),
        ("  \u3000", None),
        # already hashed: lower-cased, not hashed again; 63/65 hex is just an invalid email
        (H.upper(), H), (f"  {H.upper()}\n", H), (H, H), (H[:63], None), (H + "a", None),
    ], hashed_email)


def test_forwarded_identity_sends_only_hashes(spark):
    check(spark, [
        (None, None),
        (H, H), (H.upper(), H), (f"\u3000{H.upper()} ", H),
        ("plain@text.com", None), ("12345", None), (H[:63], None), (H + "0", None),
        ("", None), ("\u00a0", None),
    ], forwarded_identity)


def test_hashed_gender(spark):
    check(spark, [
        (None, None),
        ("f", SPEC_F), ("F", SPEC_F), (" female ", SPEC_F), ("FEMALE", SPEC_F),
        ("\u00a0Female\u3000", SPEC_F),
        ("m", SPEC_M), ("\tM\n", SPEC_M), ("Male", SPEC_M), ("MALE", SPEC_M),
        ("x", None), ("unknown", None), ("fem", None), ("w", None), ("f m", None), ("", None),
        (" ", None), ("0", None),
        (H.upper(), H), (SPEC_F.upper(), SPEC_F),
    ], hashed_gender)


def test_hashed_name(spark):
    names = [
        "Jean-Luc  O'Neil 3rd", "José", "Zoë", "Ægir", "ÆGIR", "ΟΔΥΣΣΕΑΣ", "Санкт-Петербург",
        "王", "王 小明", "e\u0301", "İsmail", "ISPARTA", "D'Angelo-Smith Jr.", "O\u2019Brien",
        "हिन्दी", "  Oslo\u00a0", "\u00a0\u3000Anna\tMaria\n",
    ]
    check(spark, [
        (None, None),
        ("Menlo Park", SPEC_MENLO_PARK),
        *[(n, name_rule(n)) for n in names],
        ("123 !?", None), ("", None), ("  ", None), ("-", None),
        (H.upper(), H), (f"  {H.upper()} ", H),
        (H[:63], name_rule(H[:63])),  # not a hash: its letters are hashed
        (H + "a", name_rule(H + "a")),
    ], hashed_name)
    # No Unicode normalization: a decomposed é is hashed as it arrives, not as NFC.
    assert name_rule("e\u0301") == sha("e\u0301") != sha("é")
    assert name_rule("Jean-Luc  O'Neil 3rd") == sha("jeanluconeilrd")
    assert name_rule("İsmail") == sha("i\u0307smail")
    assert name_rule("ΟΔΥΣΣΕΑΣ") == sha("οδυσσεας")  # final sigma


def test_hashed_country(spark):
    check(spark, [
        (None, None),
        ("US", SPEC_US), ("us", SPEC_US), ("U.S.", SPEC_US), ("USA", SPEC_US),
        (" United States ", SPEC_US),
        ("GBR", sha("gb")), ("UK", sha("gb")), ("Korea, Republic of", sha("kr")),
        ("Korea", None), ("Atlantis", None), ("", None),
        (H.upper(), H), (f"\u00a0{H}", H),
    ], hashed_country)


MADID_ROWS = [
    (None, None),
    (IDFA, IDFA.lower()),
    (f" {IDFA} ", IDFA.lower()),
    (f"\u00a0{IDFA}\u3000\n", IDFA.lower()),
    (GAID, GAID),
    (ZERO_UUID, None),  # tracking limited
    (f" {ZERO_UUID} ", None),
    (H, None), (H.upper(), None),  # a 64-hex madid is not passed through
    (IDFA.replace("-", ""), None),
    ("{" + IDFA + "}", None),
    (IDFA + "0", None),
    (IDFA[:-1], None),
    ("g" + IDFA[1:], None),
    (IDFA.replace("-", " "), None),
    ("", None), ("  ", None),
]


def test_madid_is_an_unhashed_lowercase_uuid(spark):
    check(spark, MADID_ROWS, madid)


def test_hashed_madid_hashes_the_lowercase_uuid(spark):
    rows = [(s, sha(e) if e is not None else None) for s, e in MADID_ROWS]
    check(spark, rows, hashed_madid)
    assert sha(IDFA.lower()) != sha(IDFA)


def test_advertising_id_falls_back_to_android_only_when_ios_is_blank(spark):
    rows = [
        (IDFA, GAID, IDFA, IDFA.lower()),
        (None, GAID, GAID, GAID),
        ("", GAID, GAID, GAID),
        (" \u00a0\t\u3000", GAID, GAID, GAID),
        (ZERO_UUID, GAID, ZERO_UUID, None),  # invalid iOS id: chosen, then omitted
        ("garbage", GAID, "garbage", None),
        (IDFA, None, IDFA, IDFA.lower()),
        (None, None, None, None),
        ("  ", None, None, None),
        (None, "", "", None),
    ]
    df = spark.createDataFrame(
        rows, "ios string, android string, expected string, expected_madid string"
    )
    chosen = advertising_id(F.col("ios"), F.col("android"))
    df = df.select("*", chosen.alias("actual"), madid(chosen).alias("actual_madid"))
    assert_column_equality(df, "actual", "expected")
    assert_column_equality(df, "actual_madid", "expected_madid")


def test_is_california(spark):
    check(spark, [
        (None, None),
        ("CA", True), ("ca", True), (" C.A. ", True), ("California", True),
        ("CALIFORNIA", True), ("cali-fornia", True), ("\u00a0California\u3000", True),
        ("NY", False), ("Calif", False), ("CAL", False), ("", False), ("Nevada", False),
        ("US-CA", False), ("Californien", False),
    ], is_california, "s string, expected boolean")


def test_is_non_blank_is_never_null(spark):
    check(spark, [
        (None, False), ("", False), (" \u00a0\u2007\u202f\u3000\t\n", False),
        ("x", True), (" x ", True), ("0", True),
    ], is_non_blank, "s string, expected boolean")


# ----- SPEC §9 -------------------------------------------------------------------------------
def test_phone_spec_examples(spark):
    check(spark, [
        ("+1 (650) 555-0100", sha("16505550100")),
        ("0044 20 7946 0000", sha("442079460000")),
        ("555-0100", sha("5550100")),  # 7 digits: valid
        ("12345", None),  # too short
    ], hashed_phone)


def test_hashed_phone(spark):
    check(spark, [
        (None, None), ("", None), ("\u00a0\u3000", None),
        # separators: White_Space and + - . ( ) /
        ("\u00a0+44\u202f20.7946/0000\t", sha("442079460000")),
        ("(650)555.0100", sha("6505550100")),
        ("+49-30-123456", sha("4930123456")),
        # leading zeros go, then 7 to 15 digits must remain
        ("0000000", None), ("0001234567", sha("1234567")), ("00123456", None),
        ("123456", None), ("1234567", sha("1234567")),
        ("123456789012345", sha("123456789012345")),  # 15 digits
        ("1234567890123456", None),  # 16 digits: too long
        ("+0 (000) 000-0000 0000 0000 1", None),  # a single digit after the zeros
        # only ASCII digits once the separators are gone: letters, other symbols, other digits
        ("650-555-CALL", None), ("650 555 0100 ext 2", None), ("650_555_0100", None),
        ("+1 650 555 0100#", None), ("٦٥٠٥٥٥٠١٠٠", None), 
        ("".join(chr(0xFF10 + int(d)) for d in "6505550100"), None),  # full-width digits
        ("650,555,0100", None), ("tel:6505550100", None),
        # already hashed: lower-cased, not hashed again (64 digits included)
        (H.upper(), H), (f"  {H.upper()}\n", H), ("1" * 64, "1" * 64),
        (H[:63], None),  # 63 hex: not a hash, and not digits
    ], hashed_phone)


def test_first_non_blank_uses_the_first_non_blank_source_even_when_invalid(spark):
    rows = [
        (None, None, "+1 650 555 0100", sha("16505550100")),
        ("", " \u00a0", "5550100", sha("5550100")),
        ("12345", None, "5550100", None),  # the first non-blank is invalid: no fallback
        ("\t5550199 ", "5550100", None, sha("5550199")),
        (None, None, None, None),
        (" ", "", "\u3000", None),
    ]
    df = spark.createDataFrame(rows, "a string, b string, c string, expected string")
    df = df.withColumn("actual", hashed_phone(first_non_blank(F.col("a"), F.col("b"),
                                                              F.col("c"))))
    assert_column_equality(df, "actual", "expected")


def test_country_is_us_or_absent(spark):
    check(spark, [
        (None, True), (SPEC_US, True), (US_COUNTRY_KEY, True),
        (sha("pl"), False), (sha("gb"), False), (H, False),
    ], country_is_us_or_absent, "s string, expected boolean")
    assert US_COUNTRY_KEY == SPEC_US


def check_with_country(spark, rows, builder):
    """Rows of (value, us_or_absent, expected)."""
    df = spark.createDataFrame(rows, "s string, us boolean, expected string")
    df = df.withColumn("actual", builder(F.col("s"), F.col("us")))
    assert_column_equality(df, "actual", "expected")


def test_hashed_state(spark):
    check_with_country(spark, [
        (None, True, None), (None, False, None), ("", True, None), (" - ", True, None),
        # US or absent country: a state, district or outlying-area name becomes its code
        ("California", True, sha("ca")), ("CALIFORNIA", True, sha("ca")),
        ("  california\u00a0", True, sha("ca")), ("District of Columbia", True, sha("dc")),
        ("district-of-columbia", True, sha("dc")), ("New York", True, sha("ny")),
        ("N.Y.", True, sha("ny")),  # letters only: "ny", kept as normalized
        ("Puerto Rico", True, sha("pr")), ("Virgin Islands, U.S.", True, sha("vi")),
        ("United States Minor Outlying Islands", True, sha("um")),
        ("Northern Mariana Islands", True, sha("mp")), ("Guam", True, sha("gu")),
        ("WashingtonDC", True, sha("washingtondc")),  # not an ISO 3166-2 name
        ("Calif.", True, sha("calif")),
        # two-letter codes stay as they are, lower-cased
        ("CA", True, sha("ca")), ("ny", True, sha("ny")), ("C.A.", True, sha("ca")),
        ("US-CA", True, sha("usca")),
        # another country: the name stays as normalized
        ("California", False, sha("california")), ("District of Columbia", False,
                                                    sha("districtofcolumbia")),
        ("Bavaria", False, sha("bavaria")), ("Île-de-France", False, sha("îledefrance")),
        ("Île-de-France", True, sha("îledefrance")), ("東京都", True, sha("東京都")),
        ("ON", False, sha("on")),
        # already hashed
        (H.upper(), True, H), (f" {H} ", False, H),
    ], hashed_state)


def test_hashed_zip(spark):
    check_with_country(spark, [
        (None, True, None), ("", True, None), ("  ", True, None),
        ("94105-1234", True, sha("94105")), ("94105", True, sha("94105")),
        (" 94105 1234 ", True, sha("94105")), ("941051234", True, sha("94105")),
        ("94105-1234", False, sha("941051234")),
        ("SW1A 1AA", False, sha("sw1a1aa")), ("SW1A 1AA", True, sha("sw1a1aa")),
        ("00-950", False, sha("00950")), ("00-950", True, sha("00950")),
        ("\u00a0M5V\u30002T6\t", False, sha("m5v2t6")),
        ("12345", True, sha("12345")),  # e.g. a JSON number 12345, read as its text
        ("1234", True, sha("1234")), ("12", False, sha("12")),
        ("9", True, None), ("a", False, None),  # one character: invalid
        ("941O5-1234", True, sha("941o51234")),  # no 5 leading digits: no cut
        ("9410é", True, None), ("94105#", False, None), ("100-0001", False, sha("1000001")),
        ("94105.0", True, sha("94105")),  # cut first, then checked
        ("94.105", True, None),
        (H.upper(), True, H),
    ], hashed_zip)


def test_hashed_external_id(spark):
    check(spark, [
        (None, None), ("", None), (" \u00a0 ", None),
        ("C-100042", sha("C-100042")), ("  C-100042\t", sha("C-100042")),
        ("c-100042", sha("c-100042")),  # case kept
        ("-8137152950127364391", sha("-8137152950127364391")),
        ("Zoë Ünal", sha("Zoë Ünal")),
        (H.upper(), H), (f"\u3000{H}", H), (H[:63].upper(), sha(H[:63].upper())),
    ], hashed_external_id)
