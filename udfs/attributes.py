"""Batch-level lookups: reserved user attributes, identities, CCPA consent (SPEC §1, §4, §8,
§9)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from udfs.text import lower_invariant

_IDENTITY_ARRAY = T.ArrayType(T.StructType([
    T.StructField("identity_type", T.StringType()),
    T.StructField("identity", T.StringType()),
]))
_IDENTITY_OBJECT = T.MapType(T.StringType(), T.StringType())
_CONSENT = T.StructType([T.StructField("ccpa", T.StructType([
    T.StructField("data_sale_opt_out", T.StructType([
        T.StructField("consented", T.BooleanType()),
    ])),
]))])


def _is_json_list(value: Column) -> Column:
    """True when a string-typed map value holds a JSON array (the reader keeps its raw text)."""
    return value.startswith("[") & F.json_array_length(value).isNotNull()


def reserved_entries(attributes: Column, names: Sequence[str]) -> Column:
    """The user attributes that may hold one of the reserved ``names`` (e.g. ``$firstname``), as
    an array of ``{key: lower-cased name, value}`` in the batch's order; read it with
    :func:`lookup_reserved`.

    Each key is lower-cased once (:func:`~udfs.text.lower_invariant`), and only keys that start
    like a reserved name are (``$`` has no case); list and null values are dropped here (SPEC §8:
    they count as absent, so the next casing wins). Computing this once per batch and looking up
    every name in it costs one case mapping per attribute instead of one per attribute and name.
    """
    wanted = sorted({n.lower() for n in names})
    prefixes = sorted({n[:1] for n in wanted})
    caseless = all(p and p.lower() == p.upper() for p in prefixes)

    def may_match(key: Column) -> Column:
        if not caseless:  # a first letter with a case: no cheap pre-check
            return F.lit(True)
        return reduce(lambda a, b: a | b, [key.startswith(p) for p in prefixes])

    candidates = F.filter(
        F.map_entries(attributes),
        lambda e: may_match(e["key"])
        & e["value"].isNotNull()
        & ~F.coalesce(_is_json_list(e["value"]), F.lit(False)),
    )
    lowered = F.transform(candidates, lambda e: F.struct(
        lower_invariant(e["key"]).alias("key"), e["value"].alias("value")))
    return F.filter(lowered, lambda e: e["key"].isin(*wanted))


def _first_value(entries: Column, keys: Sequence[str]) -> Column:
    """The ``value`` of the first entry whose ``key`` is one of ``keys``; null when none is.

    ``array_position`` on the array of keys runs in Spark's generated code, where a ``filter``
    lambda would be evaluated row by row outside it.
    """
    positions = [F.array_position(entries["key"], F.lit(k)) for k in keys]
    first = positions[0] if len(positions) == 1 else F.least(
        *[F.when(p > 0, p) for p in positions])
    return F.get(entries, first - F.lit(1))["value"]


def lookup_reserved(entries: Column, name: str) -> Column:
    """The value of reserved attribute ``name`` in :func:`reserved_entries` (first casing wins)."""
    return _first_value(entries, [name.lower()])


def reserved_attribute(attributes: Column, name: str) -> Column:
    """The value of reserved user attribute ``name`` (e.g. ``$firstname``), looked up
    case-insensitively.

    SPEC §8: when keys differ only by case, the first in the batch's JSON wins; a list value is
    ignored (treated as absent), and so is a null value (a tag), so the next casing counts.
    For several names of one batch, :func:`reserved_entries` + :func:`lookup_reserved` is cheaper.

    Examples
    --------
    >>> df = spark.createDataFrame([({"$FirstName": "Ann"},)], "user_attributes map<string,string>")
    >>> df.select(reserved_attribute(F.col("user_attributes"), "$firstname")).first()[0]
    'Ann'
    """
    return lookup_reserved(reserved_entries(attributes, [name]), name)


def identity_entries(raw_identities: Column, identity_types: Sequence[str]) -> Column:
    """The identities of the batch whose type is one of ``identity_types`` and whose value is not
    null, as an array of ``{key: identity type, value: identity}`` in the batch's order; read it
    with :func:`lookup_identity`.

    ``raw_identities`` is the raw JSON text of ``user_identities``: either the inbound object
    ``{"email": ...}`` or the outbound array ``[{"identity_type", "identity"}, ...]``; anything
    else gives null. The text is parsed once here, so several identity types of one batch (the
    email, phone and external id keys) cost one parse.
    """
    # ``isin`` in the lambdas: ``array_contains`` looks up its element type on every call when
    # it is evaluated outside generated code.
    wanted = sorted(set(identity_types))
    text = F.ltrim(raw_identities)
    from_object = F.filter(
        F.map_entries(F.from_json(raw_identities, _IDENTITY_OBJECT.simpleString())),
        lambda e: e["key"].isin(*wanted) & e["value"].isNotNull(),
    )
    from_array = F.transform(
        F.filter(
            F.from_json(raw_identities, _IDENTITY_ARRAY),
            lambda i: i["identity_type"].isin(*wanted) & i["identity"].isNotNull(),
        ),
        lambda i: F.struct(i["identity_type"].alias("key"), i["identity"].alias("value")),
    )
    return (
        F.when(text.startswith("{"), from_object)
        .when(text.startswith("["), from_array)
    )


def lookup_identity(entries: Column, identity_types: Sequence[str]) -> Column:
    """The first identity in :func:`identity_entries` whose type is one of ``identity_types``
    (each must be among the types the entries were built for)."""
    return _first_value(entries, list(dict.fromkeys(identity_types)))


def identity_of_type(raw_identities: Column, identity_types: Sequence[str]) -> Column:
    """The first non-null identity of one of ``identity_types`` (SPEC §4 Email Type).

    ``raw_identities`` is the raw JSON text of ``user_identities``: either the inbound object
    ``{"email": ...}`` or the outbound array ``[{"identity_type", "identity"}, ...]``. For
    several types of one batch, :func:`identity_entries` + :func:`lookup_identity` parse once.
    """
    return lookup_identity(identity_entries(raw_identities, identity_types), identity_types)


def identity_types_for(identity_type: str) -> list[str]:
    """The identity type names that match an identity type setting (Email Type, external id
    type): the name trimmed and lower-cased; ``customer_id`` also matches the SDKs'
    ``customerid``."""
    name = identity_type.strip().lower()
    if name in ("customer_id", "customerid"):
        return ["customer_id", "customerid"]
    return [name]


def ccpa_opted_out(raw_consent_state: Column) -> Column:
    """True only when ``consent_state.ccpa.data_sale_opt_out.consented`` is JSON ``true``
    (SPEC §8: a string ``"true"`` does not count)."""
    parsed = F.from_json(raw_consent_state, _CONSENT)
    return F.coalesce(parsed["ccpa"]["data_sale_opt_out"]["consented"], F.lit(False))
