"""Batches → classified events → payloads. Pure ``DataFrame -> DataFrame`` stages.

Every rule is a native column expression from ``udfs/``; match keys and Limited Data Use are
computed once per batch, before the events are exploded.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.config import JobConfig
from udfs import commerce, match_keys
from udfs.attributes import (
    ccpa_opted_out,
    identity_entries,
    identity_types_for,
    lookup_identity,
    lookup_reserved,
    reserved_entries,
)
from udfs.countries import country_code
from udfs.payload import capi_payload, data_processing_options, legacy_payload
from udfs.text import blank_to_null

#: SPEC §8: an event is counted under the first reason that applies.
SKIP_REASONS = (
    "non_commerce", "no_product_action", "unmapped_action", "missing_timestamp", "future_time",
    "too_old", "invalid_amount", "invalid_currency", "purchase_without_value", "no_match_keys",
    "duplicate",
)
#: The match keys of mParticle's integration (SPEC §4), sent in both profiles.
MPARTICLE_KEY_COLUMNS = ("k_email", "k_madid", "k_gender", "k_fn", "k_ln", "k_ct", "k_country")
#: The match keys of SPEC §9, sent in the ``extended`` profile only (null columns otherwise).
EXTENDED_KEY_COLUMNS = ("k_phone", "k_st", "k_zip", "k_external_id")
KEY_COLUMNS = MPARTICLE_KEY_COLUMNS + EXTENDED_KEY_COLUMNS
#: The reserved user attributes the keys and Limited Data Use read (SPEC §4, §6, §9).
_RESERVED = ("country", "state", "gender", "firstname", "lastname", "city", "zip", "mobile")
#: SPEC §9: the phone's identity sources, in order (``$mobile`` comes after the first).
_PHONE_IDENTITIES = ("mobile_number", "phone_number_2", "phone_number_3")


def _ldu_applies(config: JobConfig, country: Column, state: Column, consent: Column) -> Column:
    mode = config.mapping.ldu
    if mode == "never":
        return F.lit(False)
    if mode == "always":
        return match_keys.is_non_blank(country) & match_keys.is_non_blank(state)
    if mode == "california":
        return F.coalesce(match_keys.is_california(state), F.lit(False))
    return ccpa_opted_out(consent)


def _extended(config: JobConfig) -> bool:
    return config.mapping.profile == "extended"


def batch_keys(batches: DataFrame, config: JobConfig) -> DataFrame:
    """Per batch: the match keys of SPEC §4 (and §9 in the ``extended`` profile) for the
    dialect, and Limited Data Use (SPEC §6).

    Adds ``k_*`` key columns (null = omitted; the §9 ones are null in the ``mparticle``
    profile), ``ldu``, ``ldu_us``, ``ldu_ca``, ``email_not_forwarded`` (an identity of a
    non-email Email Type that is not a hash) and ``batch_identity``.
    """
    b = F.col("batch")
    attrs = b["user_attributes"]
    email_type = config.mapping.email_identity_type.strip().lower()
    email_types = identity_types_for(email_type)
    extended = _extended(config)
    external_type = config.mapping.external_id_type.strip().lower()
    external_types = [] if external_type == "mpid" else identity_types_for(external_type)
    wanted_types = email_types + ([*_PHONE_IDENTITIES, *external_types] if extended else [])
    # The lookups are higher-order functions, which run outside Spark's generated code and are
    # not shared between expressions (a key rule reads its input twice): each is done once, in
    # a projection of its own.
    batches = batches.select(
        "*",
        identity_entries(b["user_identities"], wanted_types).alias("_identities"),
        reserved_entries(attrs, [f"${name}" for name in _RESERVED]).alias("_reserved"),
    ).select(
        "*", lookup_identity(F.col("_identities"), email_types).alias("_identity"),
        *[lookup_reserved(F.col("_reserved"), f"${name}").alias(f"_{name}")
          for name in _RESERVED],
        *([lookup_identity(F.col("_identities"), [t]).alias(f"_{t}") for t in _PHONE_IDENTITIES]
          + [(b["mpid"] if external_type == "mpid"
              else lookup_identity(F.col("_identities"), external_types)).alias("_external")]
          if extended else []),
    ).withColumn("_country_code", country_code(F.col("_country")))  # read twice below
    country, state, identity = F.col("_country"), F.col("_state"), F.col("_identity")
    batches = batches.withColumn(  # read by the state and zip rules too
        "_k_country", match_keys.hashed_country_code(country, F.col("_country_code")))
    k_country = F.col("_k_country")
    if email_type == "email":
        email_key = match_keys.hashed_email(identity)
        not_forwarded = F.lit(False)
    else:
        email_key = match_keys.forwarded_identity(identity)
        not_forwarded = match_keys.is_non_blank(identity) & email_key.isNull()
    ad_id = match_keys.advertising_id(b["device_info"]["ios_advertising_id"],
                                      b["device_info"]["android_advertising_id"])
    legacy = config.dialect == "offline_conversions"
    if extended:
        batches = batches.withColumn("_us_or_absent", match_keys.country_is_us_or_absent(k_country))
        phone = match_keys.first_non_blank(
            F.col("_mobile_number"), F.col("_mobile"), F.col("_phone_number_2"),
            F.col("_phone_number_3"))
        us_or_absent = F.col("_us_or_absent")
        extended_keys = [
            match_keys.hashed_phone(phone),
            match_keys.hashed_state(state, us_or_absent),
            match_keys.hashed_zip(F.col("_zip"), us_or_absent),
            match_keys.hashed_external_id(F.col("_external")),
        ]
    else:
        extended_keys = [F.lit(None).cast("string")] * len(EXTENDED_KEY_COLUMNS)
    return batches.select(
        "source_file", "line_digest",
        b["events"].alias("events"),
        commerce.batch_identity(b["batch_id"], b["source_request_id"], F.col("line_digest"))
        .alias("batch_identity"),
        email_key.alias("k_email"),
        (match_keys.hashed_madid(ad_id) if legacy else match_keys.madid(ad_id)).alias("k_madid"),
        match_keys.hashed_gender(F.col("_gender")).alias("k_gender"),
        match_keys.hashed_name(F.col("_firstname")).alias("k_fn"),
        match_keys.hashed_name(F.col("_lastname")).alias("k_ln"),
        match_keys.hashed_name(F.col("_city")).alias("k_ct"),
        k_country.alias("k_country"),
        *[key.alias(name) for key, name in zip(extended_keys, EXTENDED_KEY_COLUMNS, strict=True)],
        _ldu_applies(config, country, state, b["consent_state"]).alias("ldu"),
        F.coalesce(F.col("_country_code") == F.lit("us"), F.lit(False)).alias("ldu_us"),
        F.coalesce(match_keys.is_california(state), F.lit(False)).alias("ldu_ca"),
        not_forwarded.alias("email_not_forwarded"),
    )


def explode_events(keyed: DataFrame) -> DataFrame:
    """One row per event of each batch (``position`` = index in the batch's events)."""
    return keyed.select(
        "*", F.posexplode("events").alias("position", "event")
    ).drop("events")


#: Columns of every classified event that come from the batch (keys, LDU, identity).
_BATCH_COLUMNS = ("source_file", "line_digest", "position", "email_not_forwarded",
                  "batch_identity", *KEY_COLUMNS, "ldu", "ldu_us", "ldu_ca")
#: The six skip reasons that need no parsing of amounts, products or currency (SPEC §8 order).
EARLY_SKIP_REASONS = SKIP_REASONS[:6]


def early_reasons(events: DataFrame, config: JobConfig, now: int) -> DataFrame:
    """Exploded events → the event name, the event time and the first six skip reasons of
    SPEC §8 (``non_commerce`` ... ``too_old``: none needs amounts, products or currency) as
    ``skip_reason`` (null = the event goes on to :func:`classify_survivors`).

    The event's fields that later rules read are taken out of the ``event`` struct here, so the
    struct itself is not carried (copied) from projection to projection. ``now`` is the run's
    reference time in epoch seconds.
    """
    d = F.col("event.data")
    pa = d["product_action"]
    # The name and the time are read by several reasons: each in a projection of its own, so
    # it is computed once per event.
    events = events.select(
        *_BATCH_COLUMNS,
        F.col("event.event_type").alias("_event_type"),
        pa.isNotNull().alias("_has_product_action"),
        commerce.event_name(pa["action"], config.event_names).alias("event_name"),
        commerce.event_time(d["timestamp_unixtime_ms"]).alias("event_time"),
        d["source_message_id"].alias("_source_message_id"),
        d["event_id"].alias("_mparticle_event_id"),
        d["currency_code"].alias("_currency_code"),
        d["custom_attributes"].alias("custom_attributes"),
        pa["transaction_id"].alias("_transaction_id"),
        pa["total_amount"].alias("_total_amount"),
        pa["products"].alias("_raw_products"),
    )
    seconds = F.col("event_time")
    oldest = now - config.mapping.max_event_age_days * 86400
    reason = (
        F.when(F.coalesce(F.col("_event_type"), F.lit("")) != "commerce_event",
               F.lit("non_commerce"))
        .when(~F.col("_has_product_action"), F.lit("no_product_action"))
        .when(F.col("event_name").isNull(), F.lit("unmapped_action"))
        .when(seconds.isNull(), F.lit("missing_timestamp"))
        .when(seconds > F.lit(now + 60), F.lit("future_time"))
        .when(seconds < F.lit(oldest), F.lit("too_old"))
    )
    return events.select("*", reason.alias("skip_reason")).drop(
        "_event_type", "_has_product_action")


def classify_survivors(early: DataFrame, config: JobConfig) -> DataFrame:
    """Events from :func:`early_reasons` → every payload field and the full skip reason (SPEC
    §2-§8, except ``duplicate``): the early reason when there is one, else the first of
    ``invalid_amount`` ... ``no_match_keys``.

    Meant for the events without an early reason (the conversion filters them first, so the
    products, value, contents, currency and event id are computed for those only); on other
    events the fields are computed too and the early reason is kept.
    """
    # Higher-order functions run outside Spark's generated code and are not shared between
    # expressions: each product is parsed once, and the value summed once, in projections of
    # their own (both are read twice below).
    events = early.withColumn("_products", commerce.parse_products(F.col("_raw_products"),
                                                                   rich_contents(config)))
    events = events.withColumn("_value", commerce.event_value_parsed(
        F.col("_total_amount"), F.col("_products"), config.mapping.value_mode))
    products = F.col("_products")
    value = F.col("_value")
    name = F.col("event_name")
    any_key = F.greatest(*[F.col(k).isNotNull() for k in KEY_COLUMNS])
    late_reason = (
        F.when(commerce.has_invalid_amount_parsed(F.col("_total_amount"), products),
               F.lit("invalid_amount"))
        .when(commerce.is_invalid_currency(F.col("_currency_code")), F.lit("invalid_currency"))
        .when((name == F.lit("Purchase")) & ~F.coalesce(value > 0, F.lit(False)),
              F.lit("purchase_without_value"))
        .when(~any_key, F.lit("no_match_keys"))
    )
    return events.select(
        "source_file", "line_digest", "position", "email_not_forwarded",
        "event_name", "event_time",
        commerce.event_id(F.col("_source_message_id"), F.col("_mparticle_event_id"),
                          F.col("batch_identity"), F.col("position")).alias("event_id"),
        commerce.sendable_value(value).alias("value"),
        commerce.currency_code(F.col("_currency_code"), config.mapping.default_currency)
        .alias("currency"),
        commerce.contents_parsed(products, config.dialect, rich_contents(config))
        .alias("contents"),
        blank_to_null(F.col("_transaction_id")).alias("order_id"),
        "custom_attributes",
        *KEY_COLUMNS, "ldu", "ldu_us", "ldu_ca",
        F.coalesce(F.col("skip_reason"), late_reason).alias("skip_reason"),
    )


def classify_events(events: DataFrame, config: JobConfig, now: int) -> DataFrame:
    """Compute every payload field and the skip reason (SPEC §2-§8, except ``duplicate``).

    ``now`` is the run's reference time in epoch seconds.
    """
    return classify_survivors(early_reasons(events, config, now), config)


def rich_contents(config: JobConfig) -> bool:
    """SPEC §9: capi contents carry title, brand and category (and ``content_type``) in the
    ``extended`` profile."""
    return config.dialect == "capi" and _extended(config)


def payload_column(config: JobConfig) -> Column:
    """The exact JSON element for the configured dialect and profile."""
    dpo = data_processing_options(F.col("ldu"), F.col("ldu_us"), F.col("ldu_ca"))
    common: dict[str, Any] = {
        "event_name": F.col("event_name"), "event_time": F.col("event_time"),
        "value": F.col("value"), "currency": F.col("currency"), "contents": F.col("contents"),
        "order_id": F.col("order_id"), "custom_attributes": F.col("custom_attributes"),
        "madid": F.col("k_madid"), "fn": F.col("k_fn"), "ln": F.col("k_ln"),
        "ct": F.col("k_ct"), "country": F.col("k_country"), "st": F.col("k_st"), "dpo": dpo,
    }
    if config.dialect == "capi":
        content_type = F.lit("product") if rich_contents(config) else None
        return capi_payload(event_id=F.col("event_id"), em=F.col("k_email"),
                            ge=F.col("k_gender"), ph=F.col("k_phone"), zp=F.col("k_zip"),
                            external_id=F.col("k_external_id"), content_type=content_type,
                            **common)
    return legacy_payload(email=F.col("k_email"), gen=F.col("k_gender"), phone=F.col("k_phone"),
                          zip_code=F.col("k_zip"), extern_id=F.col("k_external_id"), **common)


def with_payloads(classified: DataFrame, config: JobConfig) -> DataFrame:
    """Add ``event_key`` and ``payload`` (null for skipped events) to every classified event."""
    convertible = F.col("skip_reason").isNull()
    return classified.withColumn(
        "event_key", F.concat_ws("|", F.col("event_id"), F.col("event_name"))
    ).withColumn("payload", F.when(convertible, payload_column(config)))


def _payloads_of_convertible(convertible: DataFrame, config: JobConfig) -> DataFrame:
    """Add ``event_key`` and ``payload`` to events that are all convertible (already filtered).

    The payload is built unconditionally: under a ``when`` Spark would not share its repeated
    pieces (the ``to_json`` objects) through common-subexpression elimination.
    """
    return convertible.withColumn(
        "event_key", F.concat_ws("|", F.col("event_id"), F.col("event_name"))
    ).withColumn("payload", payload_column(config))


def drop_duplicates(convertible: DataFrame) -> DataFrame:
    """Keep one copy per ``event_key`` (SPEC §3, §8); the copy with the smallest payload text
    wins, so the choice is deterministic when copies differ."""
    w = Window.partitionBy("event_key").orderBy("payload", "source_file", "line_digest")
    return (
        convertible.withColumn("_copy", F.row_number().over(w))
        .where(F.col("_copy") == 1)
        .drop("_copy")
    )


def early_events(batches: DataFrame, config: JobConfig, now: int) -> DataFrame:
    """Parsed batches → one row per event with its early skip reason (:func:`early_reasons`)."""
    return (batches.transform(batch_keys, config)
            .transform(explode_events)
            .transform(early_reasons, config, now))


def classified_events(batches: DataFrame, config: JobConfig, now: int) -> DataFrame:
    """Parsed batches → one classified row per event: every payload field and its skip reason
    (SPEC §2-§8, except ``duplicate``). ``now`` is the run's reference time in epoch seconds."""
    return early_events(batches, config, now).transform(classify_survivors, config)


def unique_payloads(classified: DataFrame, config: JobConfig) -> DataFrame:
    """Classified events → the events to send, with ``event_key`` and ``payload``, one copy per
    ``event_key`` (the ``duplicate`` reason of SPEC §8)."""
    return (classified.where(F.col("skip_reason").isNull())
            .transform(_payloads_of_convertible, config)
            .transform(drop_duplicates))


def to_payloads(batches: DataFrame, config: JobConfig, now: int) -> DataFrame:
    """Parsed batches → the payloads to send: the whole conversion as one pure stage."""
    return classified_events(batches, config, now).transform(unique_payloads, config)


def payload_rows(unique: DataFrame, config: JobConfig, run_id: str) -> DataFrame:
    """The rows of the ``payloads`` table."""
    return unique.select(
        F.lit(run_id).alias("run_id"),
        "event_key", "event_id", "event_name", "event_time",
        F.to_date(F.from_unixtime("event_time")).alias("event_date"),
        F.lit(config.dialect).alias("dialect"),
        "payload",
    )
