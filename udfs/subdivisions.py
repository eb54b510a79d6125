"""US state names of SPEC §9: an ISO 3166-2:US subdivision name → its two-letter code.

The table comes from ``pycountry`` (the iso-codes project's ISO 3166-2 data): the 50 states, the
District of Columbia and the outlying areas (``American Samoa``, ``Guam``, ``Puerto Rico``,
``Virgin Islands, U.S.``, ...), 57 names with pycountry 26.2.16. Keys are compared like country
names (:func:`~udfs.countries.country_key`: letters and marks only, upper-cased), so
``District of Columbia``, ``district-of-columbia`` and ``DISTRICT OF COLUMBIA`` all give ``dc``.
Built once per process in plain Python and put in the plan as a bucketed literal
(:mod:`udfs.lookup`), the way the country table is: a row scans one or two keys, not 57.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

import pycountry
from pyspark.sql import Column

from udfs.countries import country_key
from udfs.lookup import bucketed_get, bucketed_table_sql

#: The shortest subdivision name has four letters (``Guam``, ``Iowa``, ``Ohio``, ``Utah``);
#: names are at most 32 letters (``UNITEDSTATESMINOROUTLYINGISLANDS``).
_MAX_LENGTH = 32


@functools.cache
def _table() -> tuple[tuple[str, str], ...]:
    subdivisions = sorted(
        (s for s in pycountry.subdivisions if s.country_code == "US"), key=lambda s: s.code)
    return tuple((country_key(s.name), s.code.split("-", 1)[1].lower()) for s in subdivisions)


def us_subdivision_table() -> Mapping[str, str]:
    """Key (letters of the ISO 3166-2 name, upper-cased) → two-letter code, lower-cased."""
    return MappingProxyType(dict(_table()))


@functools.cache
def _lookup_sql() -> str:
    return bucketed_table_sql(_table(), _MAX_LENGTH)


def us_subdivision_code(key: Column) -> Column:
    """The two-letter code, lower-cased, of a US state, district or outlying area whose name,
    as a lookup key (letters and marks only, upper-cased: ``upper_invariant(letters_only(x))``),
    is ``key``; null for anything else (codes such as ``CA`` included: they are no names).

    Examples
    --------
    >>> spark.range(1).select(us_subdivision_code(F.lit("DISTRICTOFCOLUMBIA"))).first()[0]
    'dc'
    """
    return bucketed_get(_lookup_sql(), key, _MAX_LENGTH)
