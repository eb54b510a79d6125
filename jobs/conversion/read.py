"""Reading mParticle batch dumps: the explicit schema, parsing and quarantine.

The dump is read as text (one batch per line) and parsed with ``from_json`` against an explicit
schema, so there is no inference pass over the input and a malformed line is flagged, kept, and
given a reason instead of being silently dropped (``spark.read.json`` would split a top-level
array into rows and flag nothing).

Loose scalar fields are declared as strings: a JSON number arrives as its text and a JSON string
as its content, so ``"10.00"`` and ``10.00`` both parse, 64-bit ids never pass through a double,
and the casts happen deliberately in ``udfs/``. ``user_identities`` has two shapes (object or
array) and is read as its raw JSON text, parsed later per shape.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from py4j.protocol import Py4JError  # type: ignore[import-untyped]
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

_S = T.StringType()

#: A product's descriptive texts are variants: rich contents (SPEC §9) send them only when they
#: are JSON strings, which a string field cannot tell from a number (both arrive as text).
_V = T.VariantType()

PRODUCT = T.StructType([
    T.StructField("id", _S),
    T.StructField("name", _V),
    T.StructField("brand", _V),
    T.StructField("category", _V),
    T.StructField("price", _S),
    T.StructField("quantity", _S),
])

PRODUCT_ACTION = T.StructType([
    T.StructField("action", _S),
    T.StructField("transaction_id", _S),
    T.StructField("total_amount", _S),
    T.StructField("products", T.ArrayType(PRODUCT)),
])

EVENT_DATA = T.StructType([
    T.StructField("timestamp_unixtime_ms", _S),
    T.StructField("event_id", _S),
    T.StructField("source_message_id", _S),
    T.StructField("currency_code", _S),
    T.StructField("custom_attributes", T.MapType(_S, _S)),
    T.StructField("product_action", PRODUCT_ACTION),
])

EVENT = T.StructType([
    T.StructField("event_type", _S),
    T.StructField("data", EVENT_DATA),
])

#: The explicit batch schema: only the fields the job uses (SPEC §1), plus the corrupt flag.
BATCH_SCHEMA = T.StructType([
    T.StructField("events", T.ArrayType(EVENT)),
    T.StructField("user_identities", _S),
    T.StructField("user_attributes", T.MapType(_S, _S)),
    T.StructField("device_info", T.StructType([
        T.StructField("ios_advertising_id", _S),
        T.StructField("android_advertising_id", _S),
    ])),
    T.StructField("consent_state", _S),
    T.StructField("mpid", _S),
    T.StructField("source_request_id", _S),
    T.StructField("batch_id", _S),
    T.StructField("_corrupt_record", _S),
])

#: ``BATCH_SCHEMA`` with ``user_attributes`` as raw JSON text: re-reads a line that failed only
#: because its attributes are an empty array (``[]``, as PHP encodes an empty map).
_RAW_ATTRIBUTES_SCHEMA = T.StructType([
    T.StructField(f.name, _S, True) if f.name == "user_attributes" else f
    for f in BATCH_SCHEMA.fields
])

#: Line-level reasons, decided before parsing; then the parse reasons.
QUARANTINE_REASONS = ("line_too_large", "invalid_utf8", "invalid_json", "not_object",
                      "events_not_array", "schema_mismatch")
#: A file that cannot be read at all is one quarantine row (and one input line) of this reason.
CORRUPT_FILE = "corrupt_file"
#: The first two bytes of every gzip stream (RFC 1952).
GZIP_MAGIC = b"\x1f\x8b"
#: Hadoop picks the gzip codec by this name suffix.
GZIP_SUFFIX = ".gz"


#: The job's Hadoop classes (``conf/java``, built into ``.jars/backfill-jvm.jar`` by ``make
#: setup``): gzip that cuts over-long lines as it decompresses, and a streamed copy of a plain
#: file that does the same.
LINE_GUARD_CODEC = "backfill.hadoop.LineGuardGzipCodec"
#: The Hadoop setting the codec takes its limit from (``max_line_bytes``).
LINE_GUARD_LIMIT = "backfill.line.max.bytes"
#: Hadoop's own bound: its line reader skips, without a trace, a line whose bytes with their
#: terminator reach this many; set to ``max_line_bytes + PLAIN_SKIP_MARGIN``.
HADOOP_MAX_LINE = "mapreduce.input.linerecordreader.line.maxlength"
#: Hadoop's bound sits this far above ``max_line_bytes``: a line of ``max_line_bytes + 1``
#: bytes read whole (then quarantined) with its ``\r\n``, and a cut gzip line (limit + 1
#: bytes) with its ``\n``, stay under it.
PLAIN_SKIP_MARGIN = 4
_JAVA_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class LineLimit:
    """How lines are bounded while read: ``max_line_bytes`` and whether the line guard (the
    job's jar) is on the classpath. Without the guard a line is read whole before the check."""

    max_line_bytes: int
    guarded: bool

    def reader_options(self) -> dict[str, str]:
        """Hadoop settings for one read (Spark merges a file source's options into the Hadoop
        configuration of its tasks): the codec for ``.gz``, its limit, Hadoop's bound."""
        if not self.guarded:
            return {}
        options = {"io.compression.codecs": LINE_GUARD_CODEC,
                   LINE_GUARD_LIMIT: str(self.max_line_bytes)}
        if self.max_line_bytes + PLAIN_SKIP_MARGIN <= _JAVA_INT_MAX:
            options[HADOOP_MAX_LINE] = str(self.max_line_bytes + PLAIN_SKIP_MARGIN)
        return options


def line_guard_available(spark: SparkSession) -> bool:
    """Whether the line guard's codec can be loaded (as Hadoop's codec factory loads it)."""
    return _loadable(spark, LINE_GUARD_CODEC)


def _loadable(spark: SparkSession, class_name: str) -> bool:
    _, conf = _hadoop(spark)
    return conf.getClassByNameOrNull(class_name) is not None


def raw_lines(spark: SparkSession, files: Sequence[str],
              source_names: Mapping[str, str] | None = None,
              limit: LineLimit | None = None) -> DataFrame:
    r"""Every line as read: ``value`` (its raw bytes; a ``\r`` before the ``\n`` is kept, so a
    line's bytes in the file are ``octet_length(value) + 1``, the last line's maybe one less),
    ``source_file`` (the input file it stands for) and ``read_path`` (the file read).

    Lines end at ``\n`` only, as in newline-delimited JSON (SPEC §1): ``\r\n`` lines read as
    usual, a file whose lines end in a lone ``\r`` is one line. Gzip files (``.gz``) are
    decompressed by Spark; with ``limit`` guarded, through the line guard. ``source_names``
    maps a path read (a copy) to the input file it stands for.
    """
    options = {"lineSep": "\n", **(limit.reader_options() if limit else {})}
    lines = spark.read.options(**options).text(list(files))
    path = F.col("_metadata.file_path")
    source = path
    for read_path, original in sorted((source_names or {}).items()):
        source = F.when(path.endswith(_path_part(read_path)), F.lit(original)).otherwise(source)
    return lines.select("value", source.alias("source_file"), path.alias("read_path"))


def usable_lines(lines: DataFrame) -> DataFrame:
    r"""The input lines of ``raw_lines``: whitespace-only lines are not input lines (SPEC §8)
    and are dropped; a line's closing ``\r`` is not part of it. The bytes are not decoded, so
    invalid UTF-8 stays visible to ``parse_batches``."""
    value = F.col("value")
    without_cr = F.when(value.endswith("\r"),
                        F.substring(value.cast("binary"), 1, F.octet_length(value) - 1)
                        .cast(_S)).otherwise(value)
    # A line that starts with "{" (nearly all) needs no regex, which would decode the whole line.
    return (lines.where(value.startswith("{") | value.rlike(r"[^\p{IsWhite_Space}]"))
            .select(without_cr.alias("value"), "source_file"))


def read_lines(spark: SparkSession, files: Sequence[str],
               source_names: Mapping[str, str] | None = None,
               limit: LineLimit | None = None) -> DataFrame:
    """One row per input line: ``value`` (the raw bytes of the line) and ``source_file``
    (``raw_lines`` then ``usable_lines``)."""
    return usable_lines(raw_lines(spark, files, source_names, limit))


def _path_part(path: str) -> str:
    """The path of a URI without scheme and authority (``file:/a/b`` and ``file:///a/b`` →
    ``/a/b``), as a suffix to compare Spark's file paths with."""
    return urllib.parse.urlsplit(path).path or path


def starts_with_gzip_magic(value: Column) -> Column:
    """True for a line whose raw bytes begin like a gzip stream: the first line of a gzip file
    read as text (one not named ``.gz``)."""
    return F.substring(value.cast("binary"), 1, 2) == F.lit(bytearray(GZIP_MAGIC))


def _quarantine_reason(value: Column, corrupt: Column) -> Column:
    """Why a line that failed the schema is malformed (SPEC §1, §8).

    Evaluated only for flagged lines (``when`` short-circuits), so it costs nothing on good
    input.
    """
    text = F.regexp_replace(value, r"^\p{IsWhite_Space}+|\p{IsWhite_Space}+$", "")
    as_map = F.from_json(text, T.MapType(_S, _S).simpleString())
    events_raw = as_map.getItem("events")
    scalar = r'^("([^"\\]|\\.)*"|-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)$'
    return (
        F.when(corrupt.isNull(), F.lit(None).cast(_S))
        .when(text.startswith("{") & as_map.isNull(), F.lit("invalid_json"))
        .when(text.startswith("{") & events_raw.isNotNull()
              & F.json_array_length(events_raw).isNull(), F.lit("events_not_array"))
        .when(text.startswith("{"), F.lit("schema_mismatch"))
        .when(F.json_array_length(text).isNotNull() | text.rlike(scalar), F.lit("not_object"))
        .otherwise(F.lit("invalid_json"))
    )


_PARSE_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}


def _unreadable_reason(value: Column, max_line_bytes: int | None) -> Column:
    """``line_too_large`` or ``invalid_utf8`` for a line that must not be parsed, else null.

    The check is on the raw bytes: a literal U+FFFD in the input is valid UTF-8 and passes.
    """
    reason = F.when(~F.is_valid_utf8(value), F.lit("invalid_utf8"))
    if max_line_bytes is not None:
        reason = (F.when(F.octet_length(value) > F.lit(max_line_bytes), F.lit("line_too_large"))
                  .when(~F.is_valid_utf8(value), F.lit("invalid_utf8")))
    return reason


def parse_batches(lines: DataFrame, max_line_bytes: int | None = None) -> DataFrame:
    """Parse each line against ``BATCH_SCHEMA``.

    Returns the lines with ``batch`` (the parsed struct, null for quarantined lines),
    ``quarantine_reason`` (null for good lines) and ``line_digest`` (SHA-256 of the raw line:
    identifies a line without keeping its text, and the batch when it carries no id). Lines
    longer than ``max_line_bytes`` or not valid UTF-8 are never parsed. ``"user_attributes":
    []`` reads as an empty map (only the empty array: any other array is a schema mismatch).
    """
    value = F.col("value")
    first = F.col("_first")
    with_fallback = (
        lines.withColumn("_unreadable", _unreadable_reason(value, max_line_bytes))
        .withColumn("_first", F.when(F.col("_unreadable").isNull(),
                                     F.from_json(value, BATCH_SCHEMA, _PARSE_OPTIONS)))
        # Re-read only the lines that failed (``when`` short-circuits: free on good input).
        .withColumn("_raw_attrs", F.when(
            first["_corrupt_record"].isNotNull(),
            F.from_json(value, _RAW_ATTRIBUTES_SCHEMA, _PARSE_OPTIONS)))
    )
    raw_attrs = F.col("_raw_attrs")
    empty_attributes = (raw_attrs["_corrupt_record"].isNull()
                        & raw_attrs["user_attributes"].rlike(r"^\[\s*\]$"))
    batch = F.when(first["_corrupt_record"].isNotNull() & F.coalesce(empty_attributes,
                                                                      F.lit(False)),
                   raw_attrs.withField("user_attributes",
                                       F.create_map().cast(T.MapType(_S, _S)))).otherwise(first)
    return (
        with_fallback.withColumn("batch", batch)
        .withColumn("quarantine_reason", F.coalesce(
            F.col("_unreadable"),
            _quarantine_reason(value, F.col("batch._corrupt_record"))))
        .withColumn("line_digest", F.sha2(value, 256))
        .drop("_unreadable", "_first", "_raw_attrs")
    )


#: The columns of the ``quarantine`` table.
QUARANTINE_SCHEMA = ("run_id string, source_file string, line_digest string, reason string, "
                     "line_length int, raw_line string")


def _quarantine_columns(run_id: str, keep_raw: bool) -> list[Column]:
    """A quarantine row of a line of ``parse_batches``: file, digest, reason and (optionally)
    the line. The raw text of a line too large or not valid UTF-8 is never kept."""
    reason = F.col("quarantine_reason")
    raw = (F.when(~reason.isin("line_too_large", "invalid_utf8"), F.col("value"))
           if keep_raw else F.lit(None).cast(_S))
    return [
        F.lit(run_id).alias("run_id"),
        F.col("source_file"),
        F.col("line_digest"),
        reason.alias("reason"),
        F.octet_length("value").alias("line_length"),
        raw.alias("raw_line"),
    ]


def quarantine_rows(parsed: DataFrame, run_id: str, keep_raw: bool) -> DataFrame:
    """The rows of the ``quarantine`` table for the malformed lines of ``parse_batches``."""
    return parsed.where(F.col("quarantine_reason").isNotNull()).select(
        *_quarantine_columns(run_id, keep_raw))


# ----- quarantine rows kept from the conversion pass -------------------------------------------
#: The job's aggregate (``conf/java/backfill/spark``, in the same jar as the line guard) that
#: keeps strings while they are few; registered as this SQL function.
BOUNDED_COLLECT = "backfill.spark.BoundedCollect"
KEPT_QUARANTINE_FUNCTION = "backfill_kept_quarantine_rows"
#: At most this many quarantine rows, of at most this many bytes as JSON, are kept from the
#: conversion pass; beyond either bound the files that held them are read again instead.
KEPT_QUARANTINE_ROWS = 10_000
KEPT_QUARANTINE_BYTES = 16 * 1024 * 1024


def kept_quarantine_rows(spark: SparkSession, run_id: str, keep_raw: bool) -> Column | None:
    """An aggregate over the lines of ``parse_batches`` (for ``DataFrame.observe``): the
    quarantine rows as JSON text, one a line, while they stay within ``KEPT_QUARANTINE_ROWS``
    and ``KEPT_QUARANTINE_BYTES``, null beyond that; None when the job's jar is not loaded.
    ``quarantine_from_kept`` makes the rows of its text."""
    if not _loadable(spark, BOUNDED_COLLECT):
        return None
    jvm, _ = _hadoop(spark)
    getattr(jvm, BOUNDED_COLLECT).register(spark._jsparkSession, KEPT_QUARANTINE_FUNCTION,
                                           KEPT_QUARANTINE_ROWS, KEPT_QUARANTINE_BYTES)
    row = F.to_json(F.struct(*_quarantine_columns(run_id, keep_raw)))
    return F.call_function(KEPT_QUARANTINE_FUNCTION,
                           F.when(F.col("quarantine_reason").isNotNull(), row))


def quarantine_from_kept(spark: SparkSession, kept: str) -> DataFrame:
    """The quarantine rows of the text ``kept_quarantine_rows`` gave."""
    lines = [(line,) for line in kept.split("\n") if line]
    return (spark.createDataFrame(lines, "row string")
            .select(F.from_json("row", QUARANTINE_SCHEMA).alias("r")).select("r.*"))


def good_batches(parsed: DataFrame) -> DataFrame:
    """The parsed batches (lines that passed), with their file and line digest."""
    return parsed.where(F.col("quarantine_reason").isNull()).select(
        "source_file", "line_digest", "batch"
    )


def corrupt_file_rows(spark: SparkSession, files: Sequence[str], run_id: str) -> DataFrame:
    """One ``quarantine`` row per file that cannot be read (no digest, length or text)."""
    return spark.createDataFrame(
        [(run_id, f, None, CORRUPT_FILE, None, None) for f in files], QUARANTINE_SCHEMA)


# ----- files that cannot be read as named ------------------------------------------------------
@dataclass
class InputPlan:
    """How the input files are read: as named, through a copy whose name tells Hadoop the right
    codec (a gzip not named ``.gz``, a plain file named ``.gz``), through a gzip copy with its
    over-long lines cut (a plain file Hadoop skipped a line of), or not at all (corrupt).

    ``scratch`` is the folder of the copies (under the output folder, removed by ``cleanup``);
    ``lengths`` the listed size of each file; ``limit`` how lines are bounded while read.
    """

    files: Sequence[str]
    scratch: str
    lengths: Mapping[str, int] = field(default_factory=dict)
    limit: LineLimit | None = None
    copies: dict[str, str] = field(default_factory=dict)  # input file → copy read instead
    corrupt: dict[str, str] = field(default_factory=dict)  # input file → why it is unreadable
    cut: set[str] = field(default_factory=set)  # input files read through a cut gzip copy
    _codec_suffixes: tuple[str, ...] | None = field(default=None, init=False, repr=False)
    _made: int = field(default=0, init=False, repr=False)  # copies made so far

    @property
    def guarded(self) -> bool:
        """Whether lines are bounded while read (a limit, and the line guard on the classpath)."""
        return self.limit is not None and self.limit.guarded

    def read_paths(self, only: Sequence[str] | None = None) -> list[str]:
        wanted = set(only) if only is not None else None
        return [self.copies.get(f, f) for f in self.readable()
                if wanted is None or f in wanted]

    def readable(self) -> list[str]:
        return [f for f in self.files if f not in self.corrupt]

    def raw_lines(self, spark: SparkSession, only: Sequence[str] | None = None) -> DataFrame:
        """``raw_lines`` over the readable files (or the ``only`` ones), named as listed."""
        return raw_lines(spark, self.read_paths(only),
                         {copy: f for f, copy in self.copies.items()}, self.limit)

    def lines(self, spark: SparkSession, only: Sequence[str] | None = None) -> DataFrame:
        """``read_lines`` over the readable files (or the ``only`` ones), named as listed."""
        return usable_lines(self.raw_lines(spark, only))

    def read_as_gzip(self, spark: SparkSession, path: str) -> bool:
        """Read ``path`` (gzip content under another name) through a ``.gz`` copy; False when
        it is already read that way."""
        original = self._original(path)
        if original is None or original in self.copies or original in self.corrupt:
            return False
        self.copies[original] = self._copy(spark, original, GZIP_SUFFIX)
        return True

    def handle_read_failure(self, spark: SparkSession, path: str, message: str) -> bool:
        """Decide about a file Spark failed to read: a plain file named ``.gz`` is read through a
        copy named as text; anything else is corrupt. False when ``path`` is not an input file
        or was already handled (the failure is then not a file's fault)."""
        original = self._original(path)
        if original is None or original in self.corrupt:
            return False
        named_gzip = self.copies.get(original, original).endswith(GZIP_SUFFIX)
        if named_gzip and original not in self.copies and not _has_gzip_magic(spark, original):
            self.copies[original] = self._copy(spark, original, ".txt")
        else:
            self.corrupt[original] = message
        return True

    # ----- plain files whose lines Hadoop skipped ----------------------------------------------
    def plain_read_metrics(self, spark: SparkSession) -> list[Column]:
        """Aggregates over ``raw_lines`` for ``files_with_skipped_lines``: ``plain_bytes`` and
        ``cut_lines``, over the lines read from files without a codec (whose bytes are the
        file's)."""
        assert self.limit is not None
        read_path = F.col("read_path")
        plain = ~F.greatest(F.lit(False),
                            *[read_path.endswith(x) for x in self.codec_suffixes(spark)])
        length = F.octet_length("value")
        bound = self.limit.max_line_bytes + PLAIN_SKIP_MARGIN
        return [
            F.coalesce(F.sum(F.when(plain, length + 1)), F.lit(0)).alias("plain_bytes"),
            F.collect_set(F.when(plain & (length >= bound), F.col("source_file")))
            .alias("cut_lines"),
        ]

    def codec_suffixes(self, spark: SparkSession) -> tuple[str, ...]:
        """The name endings Hadoop decompresses (``.gz``, ``.bz2``, ...), asked once."""
        if self._codec_suffixes is None:
            jvm, conf = _hadoop(spark)
            found = {GZIP_SUFFIX}
            for cls in jvm.org.apache.hadoop.io.compress.CompressionCodecFactory \
                    .getCodecClasses(conf):
                try:
                    codec = jvm.org.apache.hadoop.util.ReflectionUtils.newInstance(cls, conf)
                    found.add(str(codec.getDefaultExtension()))
                except Py4JError:  # a codec that cannot be made here reads nothing here
                    continue
            self._codec_suffixes = tuple(sorted(x for x in found if x))
        return self._codec_suffixes

    def plain_files(self, spark: SparkSession) -> list[str]:
        """The readable input files read without a codec."""
        suffixes = self.codec_suffixes(spark)
        return [f for f in self.readable() if not self.copies.get(f, f).endswith(suffixes)]

    def files_with_skipped_lines(self, spark: SparkSession, plain_bytes: int,
                                 cut_lines: Sequence[str]) -> list[str]:
        r"""The plain files some line of which Hadoop's bound may have skipped or cut.

        ``plain_bytes`` is the sum of ``octet_length + 1`` over every line read from plain
        files (``\n`` is a line's one terminator byte); ``cut_lines`` the files of lines that
        reached the bound (only a line Hadoop cut is that long). A file read whole gives its
        listed length, or one more when its last line has no ``\n``; a skipped line takes
        more than ``max_line_bytes`` out. So a deficit over all plain files means a skip, and
        no deficit means none unless there are more plain files than ``max_line_bytes``. In
        those two cases the plain files are summed one by one (one more read of them).
        """
        if not self.guarded:
            return []
        assert self.limit is not None
        plain = self.plain_files(spark)
        suspects = set(cut_lines) & set(plain)
        deficit = sum(self.lengths[f] for f in plain) - plain_bytes
        if deficit > 0 or len(plain) > self.limit.max_line_bytes:
            read = {r["source_file"]: r["bytes"] for r in
                    self.raw_lines(spark, only=plain).groupBy("source_file")
                    .agg(F.sum(F.octet_length("value") + 1).alias("bytes")).collect()}
            suspects |= {f for f in plain if self.lengths[f] > (read.get(f) or 0)}
        return sorted(suspects)

    def read_cut(self, spark: SparkSession, original: str) -> bool:
        """Read ``original`` (a plain file) through a gzip copy with its lines cut to
        ``max_line_bytes + 1`` bytes (the job's Java helper streams it); False when it is
        already read that way."""
        if not self.guarded or original in self.cut or original in self.corrupt:
            return False
        assert self.limit is not None
        jvm, conf = _hadoop(spark)
        target = self._target(original, GZIP_SUFFIX)
        jvm.backfill.hadoop.GuardedGzipCopy.copy(conf, original, target,
                                                 self.limit.max_line_bytes)
        self.copies[original] = _qualified(spark, target)
        self.cut.add(original)
        return True

    def _original(self, path: str) -> str | None:
        part = _path_part(path)
        for f in self.files:
            if _path_part(f) == part or _path_part(self.copies.get(f, f)) == part:
                return f
        return None

    def _target(self, original: str, suffix: str) -> str:
        """A new path in ``scratch`` for a copy of ``original`` (one folder per copy made)."""
        name = original.rstrip("/").rsplit("/", 1)[-1]
        self._made += 1
        return f"{self.scratch.rstrip('/')}/{self._made}/{name}{suffix}"

    def _copy(self, spark: SparkSession, original: str, suffix: str) -> str:
        jvm, conf = _hadoop(spark)
        target = self._target(original, suffix)
        src, dst = jvm.org.apache.hadoop.fs.Path(original), jvm.org.apache.hadoop.fs.Path(target)
        jvm.org.apache.hadoop.fs.FileUtil.copy(src.getFileSystem(conf), src,
                                               dst.getFileSystem(conf), dst, False, conf)
        return _qualified(spark, target)

    def cleanup(self, spark: SparkSession) -> None:
        if not self._made:
            return
        jvm, conf = _hadoop(spark)
        scratch = jvm.org.apache.hadoop.fs.Path(self.scratch)
        scratch.getFileSystem(conf).delete(scratch, True)


def _hadoop(spark: SparkSession) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return jvm, spark.sparkContext._jsc.hadoopConfiguration()


def _qualified(spark: SparkSession, path: str) -> str:
    jvm, conf = _hadoop(spark)
    p = jvm.org.apache.hadoop.fs.Path(path)
    return str(p.getFileSystem(conf).makeQualified(p).toString())


def _has_gzip_magic(spark: SparkSession, path: str) -> bool:
    """Whether the file begins with the gzip magic bytes (read through Hadoop's FileSystem)."""
    jvm, conf = _hadoop(spark)
    p = jvm.org.apache.hadoop.fs.Path(path)
    stream = p.getFileSystem(conf).open(p)
    try:
        return bool(stream.read() == GZIP_MAGIC[0] and stream.read() == GZIP_MAGIC[1])
    finally:
        stream.close()


def unreadable_file(exc: BaseException) -> tuple[str, str] | None:
    """The file and the root cause when ``exc`` is Spark failing to read one input file
    (``FAILED_READ_FILE``), else None."""
    throwable: Any = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    path, seen = None, 0
    while throwable is not None and seen < 50:
        seen += 1
        condition = None
        try:
            condition = throwable.getCondition()
        except Py4JError:  # not a SparkThrowable
            condition = None
        if path is None and condition and str(condition).startswith("FAILED_READ_FILE"):
            path = throwable.getMessageParameters().get("path")
        cause = throwable.getCause()
        if cause is None:
            break
        throwable = cause
    if path is None or throwable is None:
        return None
    root = f"{throwable.getClass().getSimpleName()}: {throwable.getMessage()}"
    return str(path), root
