"""The conversion stage: dump files → ``payloads`` and ``quarantine`` Delta tables, with counts.

The input is read once. Every count of SPEC §7 is gathered by Spark observations on that same
pass (``DataFrame.observe``), so reconciling costs no second scan. The same pass keeps the
quarantine rows while they are few (``kept_quarantine_rows``); beyond that, the quarantine table
is filled by re-parsing only the files that held a malformed line.

Lines are bounded while read (``LineLimit``): gzip through the line guard, plain files by
Hadoop's own bound, whose silent skips the same pass detects by counting bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from jobs import ledger
from jobs.config import JobConfig
from jobs.conversion.listing import InputFile
from jobs.conversion.partitions import balanced_input_partitions
from jobs.conversion.read import (
    BOUNDED_COLLECT,
    CORRUPT_FILE,
    GZIP_SUFFIX,
    LINE_GUARD_CODEC,
    QUARANTINE_REASONS,
    InputPlan,
    LineLimit,
    corrupt_file_rows,
    good_batches,
    kept_quarantine_rows,
    line_guard_available,
    parse_batches,
    quarantine_from_kept,
    quarantine_rows,
    starts_with_gzip_magic,
    unreadable_file,
    usable_lines,
)
from jobs.conversion.transform import (
    EARLY_SKIP_REASONS,
    MPARTICLE_KEY_COLUMNS,
    SKIP_REASONS,
    classify_survivors,
    early_events,
    payload_rows,
    unique_payloads,
)


@dataclass
class ConversionCounts:
    """What one pass over the input found. ``reconciles()`` checks SPEC §7's identities."""

    input_lines: int = 0
    batches: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    events: int = 0  # every event of every parsed batch
    out_of_range: int = 0  # outside --from-date/--to-date (not candidates of this run)
    candidates: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    payloads: int = 0
    identities_not_forwarded: int = 0
    #: Events that are not skipped only thanks to SPEC §9's keys: without them (the
    #: ``mparticle`` profile) they would be ``no_match_keys``. Copies later found duplicate
    #: are included. Always 0 in the ``mparticle`` profile.
    gained_match_key: int = 0
    files: int = 0
    corrupt_files: dict[str, str] = field(default_factory=dict)  # file → why it is unreadable
    notes: list[str] = field(default_factory=list)  # for the run report

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def reconciles(self) -> bool:
        return (
            self.input_lines == self.batches + self.quarantined_total
            and self.events == self.candidates + self.out_of_range
            and self.candidates == self.payloads + self.skipped_total
        )

    def as_dict(self) -> dict[str, Any]:
        flat: dict[str, Any] = {
            "input_files": self.files,
            "input_lines": self.input_lines,
            "batches": self.batches,
            "quarantined": self.quarantined_total,
            "events": self.events,
            "out_of_range": self.out_of_range,
            "candidate_events": self.candidates,
            "payloads": self.payloads,
            "skipped": self.skipped_total,
            "identities_not_forwarded": self.identities_not_forwarded,
            "gained_match_key": self.gained_match_key,
        }
        flat.update({f"quarantined.{k}": v for k, v in self.quarantined.items()})
        flat.update({f"skipped.{k}": v for k, v in self.skipped.items()})
        return flat


def _count_if(condition: Column, name: str) -> Column:
    return F.count_if(F.coalesce(condition, F.lit(False))).alias(name)


def date_range_filter(config: JobConfig) -> Column | None:
    """The ``from_date``/``to_date`` scope (UTC days, by ``event_time``) as a condition on the
    classified events, or None when no range is set. Events without a time are out of scope."""
    if not (config.from_date or config.to_date):
        return None
    t = F.col("event_time")
    cond = t.isNotNull()
    if config.from_date:
        start = int(dt.datetime.fromisoformat(config.from_date).replace(
            tzinfo=dt.UTC).timestamp())
        cond = cond & (t >= F.lit(start))
    if config.to_date:
        end = int(dt.datetime.fromisoformat(config.to_date).replace(
            tzinfo=dt.UTC).timestamp()) + 86400
        cond = cond & (t < F.lit(end))
    return cond


#: The run report's note when the line guard's jar is not on the classpath.
NO_LINE_GUARD = ("the line guard (backfill-jvm.jar, built by `make setup`) is not on the "
                 "classpath: each line is read whole before the max_line_bytes check, so a line "
                 "larger than the executors' memory fails the run, and the files with "
                 "malformed lines are read a second time for the quarantine rows")

log = logging.getLogger("backfill.convert")


class JobJarMissingOnExecutors(RuntimeError):
    """The driver has the job's jar (the line guard's codec, the bounded collect) but an
    executor does not."""


#: What to do when an executor lacks the job's jar.
SHIP_THE_JAR = "ship the job's jars with --jars, as `make setup` builds them into .jars/"


def _missing_on_executors(exc: BaseException, failure: tuple[str, str] | None) -> str | None:
    """The class of the job's jar an executor could not load in ``exc``, else None."""
    if failure is not None and LINE_GUARD_CODEC in failure[1]:
        return failure[1]
    text = str(exc)
    if BOUNDED_COLLECT in text and "ClassNotFoundException" in text:
        return f"ClassNotFoundException: {BOUNDED_COLLECT}"
    return None


def convert(spark: SparkSession, config: JobConfig, files: Sequence[InputFile], run_id: str,
            now: int) -> ConversionCounts:
    """Run the conversion and write ``payloads`` (replaced) and ``quarantine`` (appended).

    A file Spark cannot read (a truncated gzip) is set aside as ``corrupt_file`` and the pass
    runs again without it; a plain file named ``.gz``, or gzip content under another name, is
    read through a copy named for its content; a plain file Hadoop skipped a line of (longer
    than ``max_line_bytes``) through a gzip copy with that line cut. Good input costs no extra
    pass. The input is read in at least a few partitions per core
    (:func:`~jobs.conversion.partitions.balanced_input_partitions`).
    """
    with balanced_input_partitions(spark):
        return _convert(spark, config, files, run_id, now)


def _convert(spark: SparkSession, config: JobConfig, files: Sequence[InputFile], run_id: str,
             now: int) -> ConversionCounts:
    limit = LineLimit(config.max_line_bytes, guarded=line_guard_available(spark))
    notes: list[str] = []
    if not limit.guarded:
        log.warning(NO_LINE_GUARD)
        notes.append(NO_LINE_GUARD)
    plan = InputPlan([f.path for f in files],
                     scratch=f"{config.output_dir.rstrip('/')}/_input/{run_id}",
                     lengths={f.path: f.length for f in files}, limit=limit)
    try:
        while True:
            try:
                found = _convert_pass(spark, config, plan, run_id, now)
            except Exception as exc:
                failure = unreadable_file(exc)
                missing = _missing_on_executors(exc, failure)
                if missing is not None:
                    raise JobJarMissingOnExecutors(
                        f"{missing} (on an executor): {SHIP_THE_JAR}") from exc
                if failure is None or not plan.handle_read_failure(spark, *failure):
                    raise
                continue
            misnamed = [f for f in found.gzip_content
                        if not plan.copies.get(f, f).endswith(GZIP_SUFFIX)]
            skipped = [f for f in plan.files_with_skipped_lines(spark, **found.plain_read)
                       if f not in misnamed]
            again = [plan.read_as_gzip(spark, f) for f in misnamed]
            again += [plan.read_cut(spark, f) for f in skipped]
            if not any(again):
                break
        counts = found.counts
        counts.notes = notes
        if plan.corrupt:
            counts.corrupt_files = dict(plan.corrupt)
            counts.input_lines += len(plan.corrupt)
            counts.quarantined[CORRUPT_FILE] = len(plan.corrupt)
            ledger.append_quarantine(corrupt_file_rows(spark, sorted(plan.corrupt), run_id),
                                     config.table("quarantine"))
        if found.kept_quarantine:
            ledger.append_quarantine(quarantine_from_kept(spark, found.kept_quarantine),
                                     config.table("quarantine"))
        elif found.bad_files:
            _write_quarantine(spark, config, plan, found.bad_files, run_id)
    finally:
        plan.cleanup(spark)
    return counts


@dataclass
class _Pass:
    """What one pass over the readable files found besides the payloads it wrote: the counts,
    the files that held malformed lines, those whose lines begin like gzip content, the byte
    count of the plain files' lines (the arguments of ``InputPlan.files_with_skipped_lines``)
    and the quarantine rows as ``kept_quarantine_rows`` kept them (None: not kept)."""

    counts: ConversionCounts
    bad_files: list[str]
    gzip_content: list[str]
    plain_read: dict[str, Any]
    kept_quarantine: str | None


def _convert_pass(spark: SparkSession, config: JobConfig, plan: InputPlan, run_id: str,
                  now: int) -> _Pass:
    """One pass over the readable files: the payloads written, and what it found."""
    raw = plan.raw_lines(spark)
    plain_obs = None
    if plan.guarded and plan.plain_files(spark):  # only plain files can lose a line unseen
        plain_obs = Observation("plain_bytes")
        raw = raw.observe(plain_obs, *plan.plain_read_metrics(spark))
    parsed = parse_batches(usable_lines(raw), config.max_line_bytes)
    reason = F.col("quarantine_reason")
    line_obs = Observation("lines")
    kept = kept_quarantine_rows(spark, run_id, config.quarantine_keep_raw)
    parsed = parsed.observe(
        line_obs,
        *([kept.alias("kept_quarantine")] if kept is not None else []),
        F.count(F.lit(1)).alias("input_lines"),
        _count_if(reason.isNull(), "batches"),
        *[_count_if(reason == F.lit(r), f"q_{r}") for r in QUARANTINE_REASONS],
        F.collect_set(F.when(reason.isNotNull(), F.col("source_file"))).alias("bad_files"),
        F.collect_set(F.when((reason == F.lit("invalid_utf8"))
                             & starts_with_gzip_magic(F.col("value")),
                             F.col("source_file"))).alias("gzip_content"),
    )

    # Two observations: the early reasons (no parsing needed) are counted on every event, and
    # only the events without one go on to the products, value, currency and payload; the late
    # reasons are counted on those.
    early = early_events(good_batches(parsed), config, now)
    skip = F.col("skip_reason")
    scope = date_range_filter(config)
    in_scope = scope if scope is not None else F.lit(True)
    event_obs = Observation("events")
    early = early.observe(
        event_obs,
        F.count(F.lit(1)).alias("events"),
        _count_if(~in_scope, "out_of_range"),
        *[_count_if(in_scope & (skip == F.lit(r)), f"s_{r}") for r in EARLY_SKIP_REASONS],
        _count_if(in_scope & F.col("email_not_forwarded"), "not_forwarded"),
    )
    survivors = early.where(skip.isNull() & in_scope)
    late_obs = Observation("late")
    late_reasons = [r for r in SKIP_REASONS if r not in EARLY_SKIP_REASONS]
    classified = classify_survivors(survivors, config).observe(
        late_obs,
        F.count(F.lit(1)).alias("survivors"),
        *[_count_if(skip == F.lit(r), f"s_{r}") for r in late_reasons],
        # not skipped, yet without one key of mParticle's integration (SPEC §9)
        _count_if(skip.isNull()
                  & ~F.greatest(*[F.col(k).isNotNull() for k in MPARTICLE_KEY_COLUMNS]),
                  "gained_match_key"),
    )
    unique = unique_payloads(classified, config)
    unique_obs = Observation("payloads")
    unique = unique.observe(unique_obs, F.count(F.lit(1)).alias("payloads"))
    rows = payload_rows(unique, config, run_id)
    ledger.write_payloads(rows, config.table("payloads"))

    lines_m, events_m = line_obs.get, {**event_obs.get, **late_obs.get}
    counts = ConversionCounts(
        files=len(plan.files),
        input_lines=lines_m["input_lines"],
        batches=lines_m["batches"],
        quarantined={r: lines_m[f"q_{r}"] for r in QUARANTINE_REASONS if lines_m[f"q_{r}"]},
        events=events_m["events"],
        out_of_range=events_m["out_of_range"],
        payloads=unique_obs.get["payloads"],
        identities_not_forwarded=events_m["not_forwarded"],
        gained_match_key=events_m["gained_match_key"],
    )
    skipped = {r: events_m[f"s_{r}"] for r in SKIP_REASONS}
    convertible = sum(v for v in skipped.values())  # duplicates are counted below
    counts.candidates = events_m["events"] - counts.out_of_range
    skipped["duplicate"] = counts.candidates - convertible - counts.payloads
    counts.skipped = {r: n for r, n in skipped.items() if n}

    plain_m = plain_obs.get if plain_obs is not None else {}
    plain_read = {"plain_bytes": plain_m.get("plain_bytes") or 0,
                  "cut_lines": sorted(plain_m.get("cut_lines") or [])}
    return _Pass(counts, sorted(lines_m["bad_files"] or []),
                 sorted(lines_m["gzip_content"] or []), plain_read,
                 lines_m.get("kept_quarantine"))


def _write_quarantine(spark: SparkSession, config: JobConfig, plan: InputPlan,
                      bad_files: list[str], run_id: str) -> DataFrame:
    """Re-parse only the files that held malformed lines and append those lines."""
    parsed = parse_batches(plan.lines(spark, only=bad_files), config.max_line_bytes)
    rows = quarantine_rows(parsed, run_id, config.quarantine_keep_raw)
    ledger.append_quarantine(rows, config.table("quarantine"))
    return rows
