"""The country rule of SPEC §4 / §8: free text → ISO 3166-1 alpha-2, lower-cased.

The table comes from ``pycountry`` (the iso-codes project's data) and is built once per process
in plain Python; each :func:`country_code` call puts it in the plan as one literal array of
small maps, which Spark constant-folds, so nothing is captured in closures or looked up per row
in Python. Spark's map access scans a map's keys one by one, so one map of all 748 keys made the
lookup the dearest rule of the whole job (about 8 s per million events on two cores); the keys
are therefore split into buckets by length and first letter (:func:`country_bucket`), and a row
reads one array element and scans a handful of keys.

Keys are the letters of a name or code (categories L and M), upper-cased:

- every alpha-2 code (``US``),
- every alpha-3 code (``USA``),
- every ISO 3166-1 ``name`` (pycountry's ``name`` field only, not ``official_name`` or
  ``common_name``): ``United States`` → ``UNITEDSTATES``, ``Korea, Republic of`` →
  ``KOREAREPUBLICOF``,
- the aliases of :data:`COUNTRY_ALIASES` (``UK`` → ``GB``).

When two sources give the same key, the first in that order wins (alpha-2, then alpha-3, then
name, then alias; within a source, countries in alpha-2 order), and the losing pair is recorded
in :func:`country_key_collisions`. With pycountry 26.2.16 there is none: codes have two or three
letters and every name has at least four.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import pycountry
from pyspark.sql import Column
from pyspark.sql import functions as F

from udfs.lookup import BUCKET_MAX_LENGTH, bucket_of, bucketed_get, bucketed_table_sql
from udfs.text import letters_only, upper_invariant

#: Keys that are not ISO codes or names but are common enough to map (already in key form).
COUNTRY_ALIASES: Mapping[str, str] = MappingProxyType({"UK": "GB"})


def country_key(text: str) -> str:
    """The lookup key of a name or code in Python: letters and marks kept, upper-cased.

    Mirrors ``upper_invariant(letters_only(col))`` on the Spark side.
    """
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LM").upper()


def build_country_table(
    countries: Iterable[Any], aliases: Mapping[str, str]
) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Build the lookup table from country records (``alpha_2``, ``alpha_3``, ``name``).

    Returns the table (key → alpha-2 lower-cased, in insertion order: alpha-2 keys, alpha-3
    keys, name keys, aliases) and the collisions ``(key, code kept, code dropped)``. The first
    claim of a key wins, so an alpha-2 code always maps to itself. Deterministic: countries are
    taken in alpha-2 order whatever the input order.
    """
    ordered = sorted(countries, key=lambda c: c.alpha_2)
    sources = (
        [(c.alpha_2, c.alpha_2) for c in ordered],
        [(c.alpha_3, c.alpha_2) for c in ordered],
        [(country_key(c.name), c.alpha_2) for c in ordered],
        list(aliases.items()),
    )
    table: dict[str, str] = {}
    collisions: list[tuple[str, str, str]] = []
    for source in sources:
        for key, alpha_2 in source:
            code = alpha_2.lower()
            if key not in table:
                table[key] = code
            elif table[key] != code:
                collisions.append((key, table[key], code))
    return table, collisions


@functools.cache
def _table() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, str], ...]]:
    table, collisions = build_country_table(pycountry.countries, COUNTRY_ALIASES)
    return tuple(table.items()), tuple(collisions)


def country_table() -> Mapping[str, str]:
    """The lookup table: key (letters, upper-cased) → alpha-2 code, lower-cased.

    Ordered alpha-2 keys first (the most common input), then alpha-3, names and aliases.
    """
    return MappingProxyType(dict(_table()[0]))


def country_key_collisions() -> tuple[tuple[str, str, str], ...]:
    """Keys claimed by two countries: ``(key, code kept, code dropped)``; empty today."""
    return _table()[1]


#: Keys longer than this share the last length bucket.
_BUCKET_MAX_LENGTH = BUCKET_MAX_LENGTH


def country_bucket(key: str) -> int:
    """The bucket of a lookup key: its length (capped) and first letter (A-Z, else 0), as the
    Spark side computes it in :func:`country_code`."""
    return bucket_of(key, _BUCKET_MAX_LENGTH)


@functools.cache
def _lookup_sql() -> str:
    return bucketed_table_sql(_table()[0], _BUCKET_MAX_LENGTH)


def country_lookup() -> Column:
    """The lookup table as a literal Spark array of maps (``array<map<string,string>>``), one
    map per :func:`country_bucket`.

    This is ``CreateArray`` of ``CreateMap`` of string literals, constant-folded by the optimizer
    into one literal. It is written as SQL text because ``F.create_map(*[F.lit(...)])`` costs one
    Py4J call per literal (about 0.8 s for these 1,496 literals, on every call), the SQL text one
    call.
    """
    return F.expr(_lookup_sql())


def country_code(col: Column) -> Column:
    """The ISO 3166-1 alpha-2 code, lower-cased, of a free-text country (SPEC §4, §8); null when
    the value is not a known code or name.

    Keeps only letters (and combining marks), upper-cases them (locale-independently) and looks
    the result up in :func:`country_table`: ``US``, ``us``, ``U.S.``, ``USA``, ``U.S.A.``,
    `` United States ``, ``united-states`` → ``us``; ``GBR``, ``UK`` → ``gb``;
    ``Korea, Republic of`` → ``kr``. ``Korea``, ``America`` and official names → null. No
    Unicode normalization: a decomposed accent does not match a precomposed name. Null → null.

    Examples
    --------
    >>> spark.range(1).select(country_code(F.lit("U.S.A."))).first()[0]
    'us'
    """
    key = upper_invariant(letters_only(col))
    return bucketed_get(_lookup_sql(), key, _BUCKET_MAX_LENGTH)
