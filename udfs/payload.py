"""The exact JSON element sent to Meta, per dialect (SPEC §5, §6, §8, §9), built in the JVM.

``to_json`` omits null fields, so an omitted key is simply a null column. The ``custom_data``
object mixes typed reserved fields with free-form custom attributes; it is assembled from two
``to_json`` objects and spliced in as text, which keeps everything native (no parse round trip).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

#: SPEC §8: Meta's standard ``custom_data`` parameters. A capi custom attribute named exactly
#: (case-sensitively) like one of them is never sent: Meta validates these names and refuses a
#: whole request for one wrong value (a text ``value``), so only the job's own values go there.
STANDARD_CUSTOM_DATA_KEYS = (
    "value", "net_revenue", "currency", "content_name", "content_category", "content_ids",
    "contents", "content_type", "order_id", "predicted_ltv", "num_items", "status",
    "search_string", "delivery_category", "item_number",
)
#: Omitted keys are null fields: say so explicitly rather than rely on the session's default.
_JSON = {"ignoreNullFields": "true"}


def _bytes(text: Column) -> Column:
    return text.cast("binary")


def _without_last_byte(text: Column) -> Column:
    """All but the last byte (a JSON object's ``}``), as binary: a byte slice, where a string
    ``substring`` would count characters through the whole text twice."""
    return _bytes(text).substr(F.lit(1), F.octet_length(text) - F.lit(1))


def merge_json_objects(first: Column, second: Column) -> Column:
    """Concatenate two JSON object texts (``{...}`` + ``{...}``); either may be ``{}``.

    Null when either is null. Written without conditional branches over the inputs, so each is
    evaluated once (Spark re-evaluates an expression that a ``when`` branch repeats), and on
    bytes (ASCII braces never occur inside a UTF-8 multi-byte character).
    """
    neither_empty = (first != F.lit("{}")) & (second != F.lit("{}"))
    return F.concat(
        _without_last_byte(first),  # "{" when first is "{}"
        _bytes(F.when(neither_empty, F.lit(",")).otherwise(F.lit(""))),
        _bytes(second).substr(F.lit(2), F.octet_length(second)),  # "}" when second is "{}"
    ).cast("string")


def with_field(json_object: Column, name: str, json_value: Column) -> Column:
    """Append ``"name": <json_value>`` to a JSON object text; unchanged when the value is null.

    Each input is evaluated once (no ``when`` branch repeats them).
    """
    appended = F.concat(
        _without_last_byte(json_object),
        _bytes(F.when(json_object == F.lit("{}"), F.lit("")).otherwise(F.lit(","))),
        _bytes(F.lit(f'"{name}":')), _bytes(json_value), _bytes(F.lit("}")),
    ).cast("string")
    return F.coalesce(appended, json_object)  # null value: the concatenation is null


def data_processing_options(applies: Column, country_is_us: Column, state_is_california: Column
                            ) -> list[Column]:
    """SPEC §6: ``["LDU"]`` with country 1 (US) / 0 and state 1000 (California) / 0 when Limited
    Data Use applies; otherwise ``[]`` and no country/state."""
    return [
        F.when(applies, F.array(F.lit("LDU")))
        .otherwise(F.array().cast("array<string>")).alias("data_processing_options"),
        F.when(applies, F.when(country_is_us, F.lit(1)).otherwise(F.lit(0)))
        .alias("data_processing_options_country"),
        F.when(applies, F.when(state_is_california, F.lit(1000)).otherwise(F.lit(0)))
        .alias("data_processing_options_state"),
    ]


def _integral_quantities(payload: Column) -> Column:
    """Print whole quantities as integers (``2`` rather than ``2.0``), as Meta documents them."""
    return F.regexp_replace(payload, r'"quantity":(-?\d+)\.0(?=[,}])', '"quantity":$1')


def _custom_attributes_json(custom_attributes: Column, drop_keys: Sequence[str] = ()) -> Column:
    attrs = custom_attributes
    if drop_keys:
        # map_filter runs outside generated code, entry by entry: only when a key must go.
        dropped = F.array(*[F.lit(k) for k in drop_keys])
        attrs = F.when(
            F.arrays_overlap(F.map_keys(attrs), dropped),
            F.map_filter(attrs, lambda k, _v: ~F.array_contains(dropped, k)),
        ).otherwise(attrs)
    return F.coalesce(F.to_json(attrs, _JSON), F.lit("{}"))


def _string_null() -> Column:
    return F.lit(None).cast("string")


def capi_payload(*, event_name: Column, event_time: Column, event_id: Column, em: Column,
                 madid: Column, ge: Column, fn: Column, ln: Column, ct: Column, country: Column,
                 value: Column, currency: Column, contents: Column, order_id: Column,
                 custom_attributes: Column, dpo: list[Column], ph: Column | None = None,
                 st: Column | None = None, zp: Column | None = None,
                 external_id: Column | None = None, content_type: Column | None = None
                 ) -> Column:
    """A Conversions API event with ``action_source: physical_store`` (SPEC §5, §8, §9).

    ``em`` and ``ph`` are sent as one-element lists, every other key as a string; a key left
    out (None) or null is not sent. ``content_type`` (SPEC §9: ``"product"`` with rich contents)
    goes into ``custom_data`` after ``order_id``. A custom attribute named like one of Meta's
    standard ``custom_data`` parameters (:data:`STANDARD_CUSTOM_DATA_KEYS`) is never sent.
    """
    ph, st, zp, external_id, content_type = (
        _string_null() if c is None else c for c in (ph, st, zp, external_id, content_type))
    user_data = F.struct(
        F.when(em.isNotNull(), F.array(em)).alias("em"), madid.alias("madid"), ge.alias("ge"),
        fn.alias("fn"), ln.alias("ln"), ct.alias("ct"), country.alias("country"),
        F.when(ph.isNotNull(), F.array(ph)).alias("ph"), st.alias("st"), zp.alias("zp"),
        external_id.alias("external_id"),
    )
    base = F.to_json(F.struct(
        event_name.alias("event_name"), event_time.alias("event_time"),
        event_id.alias("event_id"), F.lit("physical_store").alias("action_source"),
        user_data.alias("user_data"), *dpo,
    ), _JSON)
    # Only this object holds quantities: the regex scans it, not the whole event.
    reserved = _integral_quantities(F.to_json(F.struct(
        value.alias("value"), F.when(value.isNotNull(), currency).alias("currency"),
        contents.alias("contents"), order_id.alias("order_id"),
        F.when(contents.isNotNull(), content_type).alias("content_type"),
    ), _JSON))
    custom = merge_json_objects(
        reserved, _custom_attributes_json(custom_attributes, STANDARD_CUSTOM_DATA_KEYS))
    # nullif evaluates ``custom`` once (Spark computes it in a projection of its own).
    return with_field(base, "custom_data", F.nullif(custom, F.lit("{}")))


def legacy_payload(*, event_name: Column, event_time: Column, email: Column, madid: Column,
                   gen: Column, fn: Column, ln: Column, ct: Column, country: Column,
                   value: Column, currency: Column, contents: Column, order_id: Column,
                   custom_attributes: Column, dpo: list[Column], phone: Column | None = None,
                   st: Column | None = None, zip_code: Column | None = None,
                   extern_id: Column | None = None) -> Column:
    """An Offline Conversions API event (SPEC §5, §8, §9): string ``match_keys`` (``phone``,
    ``st``, ``zip``, ``extern_id`` after §4's; a key left out or null is not sent), top-level
    value/currency, ``custom_data`` = the custom attributes or ``{}``."""
    phone, st, zip_code, extern_id = (
        _string_null() if c is None else c for c in (phone, st, zip_code, extern_id))
    match_keys = F.struct(
        email.alias("email"), madid.alias("madid"), gen.alias("gen"), fn.alias("fn"),
        ln.alias("ln"), ct.alias("ct"), country.alias("country"), phone.alias("phone"),
        st.alias("st"), zip_code.alias("zip"), extern_id.alias("extern_id"),
    )
    # The quantities are in this object, not in the custom attributes: the regex scans it only.
    base = _integral_quantities(F.to_json(F.struct(
        match_keys.alias("match_keys"), event_name.alias("event_name"),
        event_time.alias("event_time"), F.when(value.isNotNull(), currency).alias("currency"),
        value.alias("value"), contents.alias("contents"), order_id.alias("order_id"), *dpo,
    ), _JSON))
    return with_field(base, "custom_data", _custom_attributes_json(custom_attributes))
