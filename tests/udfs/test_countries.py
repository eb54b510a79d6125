"""udfs/countries.py: free-text country → ISO 3166-1 alpha-2, lower-cased (SPEC §4, §8)."""

from __future__ import annotations

from types import SimpleNamespace

import pycountry
from chispa import assert_column_equality
from pyspark.sql import functions as F

from udfs.countries import (
    COUNTRY_ALIASES,
    build_country_table,
    country_code,
    country_key,
    country_key_collisions,
    country_table,
)

S = "s string, expected string"


def test_country_code_rule(spark):
    rows = [
        (None, None),
        ("US", "us"), ("us", "us"), ("U.S.", "us"), ("U.S.A.", "us"), ("USA", "us"),
        ("usa", "us"), (" United States ", "us"), ("united-states", "us"),
        ("\u00a0UNITED\u3000STATES\t", "us"), ("United_States!", "us"),
        ("GB", "gb"), ("GBR", "gb"), ("UK", "gb"), ("u.k.", "gb"), ("United Kingdom", "gb"),
        ("Korea, Republic of", "kr"), ("KOREA REPUBLIC OF", "kr"), ("KOR", "kr"),
        ("Korea, Democratic People's Republic of", "kp"),
        ("Türkiye", "tr"), ("TÜRKIYE", "tr"), ("tur", "tr"),
        ("Côte d'Ivoire", "ci"), ("CÔTE D\u2019IVOIRE", "ci"), ("Åland Islands", "ax"),
        ("Bolivia, Plurinational State of", "bo"), ("Peru", "pe"), ("PER", "pe"),
        # not mapped
        ("Korea", None), ("America", None), ("Atlantis", None),
        ("United States of America", None),  # official name
        ("United Kingdom of Great Britain and Northern Ireland", None),  # official name
        ("Cote d'Ivoire", None),  # letters differ
        ("Co\u0302te d'Ivoire", None),  # decomposed accent: no Unicode normalization
        ("Turkey", None),  # not the current ISO name
        ("U", None), ("XX", None), ("EN", None), ("12", None), ("", None), ("   ", None),
        ("U\u0301S", None),  # a mark is kept, so this is not "US"
        # lookup buckets (length and first letter): very long, non-Latin first letter, lower
        # case first letter after upper-casing, a key of one letter
        ("Antigua and Barbuda" * 4, None), ("Ωmega", None), ("ßUS", None), ("É", None),
    ]
    df = spark.createDataFrame(rows, S).withColumn("actual", country_code(F.col("s")))
    assert_column_equality(df, "actual", "expected")


def test_every_pycountry_code_and_name_maps_to_its_alpha2(spark):
    rows = []
    for c in pycountry.countries:
        code = c.alpha_2.lower()
        rows += [(c.alpha_2, code), (c.alpha_2.lower(), code), (c.alpha_3, code),
                 (c.alpha_3.lower(), code), (c.name, code), (f" {c.name.lower()} ", code),
                 (c.name.upper(), code)]
    df = spark.createDataFrame(rows, S).withColumn("actual", country_code(F.col("s")))
    assert_column_equality(df, "actual", "expected")


def test_table_keys_and_no_collisions_with_pinned_pycountry():
    table = country_table()
    countries = list(pycountry.countries)
    assert len(countries) == 249
    assert len(table) == 3 * 249 + len(COUNTRY_ALIASES)
    assert country_key_collisions() == ()
    assert table["UNITEDSTATES"] == "us"
    assert table["KOREAREPUBLICOF"] == "kr"
    assert table["UK"] == "gb"
    assert all(table[c.alpha_2] == c.alpha_2.lower() for c in countries)
    assert all(key == country_key(key) for key in table)  # keys are already in key form
    assert list(table)[:3] == ["AD", "AE", "AF"]  # alpha-2 keys first, in order


def test_collisions_are_resolved_alpha2_first_deterministically():
    fake = [
        SimpleNamespace(alpha_2="ZZ", alpha_3="ZZZ", name="Zed"),
        SimpleNamespace(alpha_2="AB", alpha_3="ZED", name="Ab"),  # alpha-3 = another's name
        SimpleNamespace(alpha_2="CD", alpha_3="CDX", name="Z.Z."),  # name = another's alpha-2
        SimpleNamespace(alpha_2="QQ", alpha_3="QQQ", name="Zed"),  # duplicate name
    ]
    table, collisions = build_country_table(fake, {"ZZ": "QQ", "UK": "GB"})
    assert table["ZZ"] == "zz"  # alpha-2 beats a name and an alias
    assert table["ZED"] == "ab"  # alpha-3 beats a name
    assert table["UK"] == "gb"
    assert collisions == [("ZZ", "zz", "cd"), ("ZED", "ab", "qq"), ("ZED", "ab", "zz"),
                          ("ZZ", "zz", "qq")]
    # the input order does not matter
    assert build_country_table(reversed(fake), {"ZZ": "QQ", "UK": "GB"}) == (table, collisions)
