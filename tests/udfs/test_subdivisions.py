"""udfs/subdivisions.py: ISO 3166-2:US names → two-letter codes (SPEC §9)."""

from __future__ import annotations

import pycountry
from chispa import assert_column_equality
from pyspark.sql import functions as F

from udfs.countries import country_key
from udfs.subdivisions import us_subdivision_code, us_subdivision_table
from udfs.text import letters_only, upper_invariant


def test_table_holds_every_us_subdivision_of_pycountry():
    table = us_subdivision_table()
    us = [s for s in pycountry.subdivisions if s.country_code == "US"]
    assert len(table) == len(us) == 57  # 50 states, DC, 6 outlying areas (pycountry 26.2.16)
    assert {v for v in table.values()} == {s.code[3:].lower() for s in us}
    assert table["DISTRICTOFCOLUMBIA"] == "dc" and table["CALIFORNIA"] == "ca"
    assert table["VIRGINISLANDSUS"] == "vi" and table["AMERICANSAMOA"] == "as"
    assert all(k == country_key(k) and len(k) >= 4 for k in table)  # names, never codes


def test_us_subdivision_code(spark):
    rows = [(s.name, s.code[3:].lower()) for s in pycountry.subdivisions
            if s.country_code == "US"]
    rows += [
        (None, None), ("", None), ("CA", None), ("ca", None), ("Calif", None),
        ("Washington DC", None), ("New  York", "ny"), ("new-york", "ny"), ("NEW YORK", "ny"),
        ("district of columbia", "dc"), ("Virgin Islands (U.S.)", "vi"), ("Bavaria", None),
        ("United States Minor Outlying Islands!", "um"),
    ]
    df = spark.createDataFrame(rows, "s string, expected string")
    df = df.withColumn("actual", us_subdivision_code(upper_invariant(letters_only(F.col("s")))))
    assert_column_equality(df, "actual", "expected")
