"""The one place that creates the SparkSession.

Embedded mode (the default): ``local[*]`` (or the configured master) with every jar that
``make setup`` put into ``.jars/`` (or ``$BACKFILL_DELTA_JARS``) on the classpath: Delta
Lake's, the job's line guard (``jobs/conversion/read.py``), and Hadoop's S3A connector
(``hadoop-aws`` matching PySpark's Hadoop, with the AWS SDK v2 modules it uses) for ``s3a://``
input and tables. S3A's endpoint and credentials come the
standard ways: ``spark.hadoop.fs.s3a.*`` in the config's ``spark.conf`` and the ``AWS_*``
variables.

Under ``spark-submit`` (or any already running Spark), the session given by the launcher is used
as it is: its master, its jars (``--packages`` or the platform's), nothing hard-coded; only
checked for Delta Lake (extension, catalog, jars) so that a missing ``--conf`` fails at once.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
REPO_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("backfill.session")

#: Settings every session of this job gets (runtime settings, safe to set on a given session).
RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # Later-duplicate keys inside one JSON map must not fail the whole job; SPEC §8 rules pick
    # the first of case-variants explicitly, see udfs/attributes.py.
    "spark.sql.mapKeyDedupPolicy": "LAST_WIN",
    # Spark 4.2 reads this flag on every value that interpreted code (higher-order functions)
    # fetches from a row, and while it is unset its default calls System.getenv each time (3% of
    # the conversion's CPU in a profile). The framework covers only the TIME type, unused here.
    "spark.sql.types.framework.enabled": "false",
}
#: Sessions created in-process only (under ``local[*]`` the driver JVM also runs the tasks): the
#: throughput collector. With G1's concurrent threads competing for the cores the tasks use, the
#: dry run of a 1.4M-event dump on two cores took 107.4 / 107.8 s against 98.2 / 99.0 s with this
#: (back to back, same counts). ``conf`` can replace it (the tests use the serial collector).
EMBEDDED_JAVA_OPTIONS = "-XX:+UseParallelGC"
#: The class-data archive of an embedded driver (``make setup`` writes it, see
#: ``jobs/tools/class_archive.py``): the classes a dry run loads from Spark's jars, mapped from the
#: file instead of read, checked and defined one by one. A stale archive (another JDK, other
#: jars) is not used, silently; the JVM then loads its classes as it would without one.
CLASS_ARCHIVE_NAME = "spark-classes.jsa"
#: Java options that choose the class-data sharing themselves: the archive is then not added.
_OWN_SHARING = ("-Xshare", "SharedArchiveFile", "ArchiveClassesAtExit")


class DeltaNotConfigured(RuntimeError):
    """Delta Lake is not usable in this session; the message says how to enable it."""


class DeltaJarsMissing(DeltaNotConfigured):
    """Delta Lake's jars are not on this machine: run `make setup`."""


def jars_folder() -> Path:
    """``.jars/`` of the checkout, or ``$BACKFILL_DELTA_JARS``."""
    return Path(os.environ.get("BACKFILL_DELTA_JARS", REPO_ROOT / ".jars"))


def class_archive() -> Path:
    """Where the embedded driver's class-data archive is (it may not exist)."""
    return jars_folder() / CLASS_ARCHIVE_NAME


def with_class_archive(java_options: str) -> str:
    """``java_options`` plus the class-data archive, when it exists and the options do not
    choose the sharing themselves (``-Xshare:off``, another archive)."""
    archive = class_archive()
    if not archive.is_file() or any(o in java_options for o in _OWN_SHARING):
        return java_options
    # -Xlog:cds*=off: a stale archive is dropped without a warning on the console.
    return f"{java_options} -XX:SharedArchiveFile={archive} -Xlog:cds=off -Xlog:cds+dynamic=off"


def delta_jars() -> list[str]:
    """The jars for the embedded session (Delta Lake's, the S3A connector's, the line
    guard's)."""
    folder = jars_folder()
    jars = sorted(glob.glob(str(folder / "*.jar")))
    if not any("delta-spark" in Path(j).name for j in jars):
        raise DeltaJarsMissing(
            f"Delta Lake's jars are not in {folder}: run `make setup` (it fetches them with mvn),"
            " or point BACKFILL_DELTA_JARS at a folder holding delta-spark and delta-storage."
        )
    return jars


def launched_by_spark_submit() -> bool:
    """True when a JVM was started for us (spark-submit, pyspark shell, a notebook platform)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or SparkSession.getActiveSession() is not None


DELTA_SUBMIT_HINT = (
    "--packages io.delta:delta-spark_4.2_2.13:4.4.0 (or --jars with delta-spark and "
    f"delta-storage) --conf spark.sql.extensions={DELTA_EXTENSION} "
    f"--conf spark.sql.catalog.spark_catalog={DELTA_CATALOG}"
)


def check_delta(spark: SparkSession) -> None:
    """Fail fast, before any work, when a launcher's session cannot run Delta Lake.

    Databricks Runtime has Delta built in (no extension setting), so it is not checked there.
    """
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return
    extensions = spark.conf.get("spark.sql.extensions", None) or ""
    catalog = spark.conf.get("spark.sql.catalog.spark_catalog", None) or ""
    if DELTA_EXTENSION not in extensions or catalog != DELTA_CATALOG:
        raise DeltaNotConfigured(
            "the Spark session is not configured for Delta Lake (spark.sql.extensions="
            f"{extensions or '<unset>'}, spark.sql.catalog.spark_catalog={catalog or '<unset>'})"
            f"; launch with: spark-submit {DELTA_SUBMIT_HINT}"
        )
    try:
        spark.catalog.currentDatabase()  # loads the DeltaCatalog class
    except Exception as exc:
        if DELTA_CATALOG not in str(exc):
            raise
        raise DeltaNotConfigured(
            "Delta Lake's jars are not on the Spark classpath (the DeltaCatalog class is "
            f"missing); launch with: spark-submit {DELTA_SUBMIT_HINT}"
        ) from None


def embedded_settings(conf: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings of an embedded session: the jars, Delta Lake, the collector, the runtime
    defaults, then ``conf`` (which wins); the driver's Java options, its own or ``conf``'s, get
    the class-data archive (:func:`with_class_archive`)."""
    settings = {
        "spark.jars": ",".join(delta_jars()),
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.ui.showConsoleProgress": "false",
        "spark.speculation": "false",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.driver.extraJavaOptions": EMBEDDED_JAVA_OPTIONS,
        **RUNTIME_CONF,
        **(conf or {}),
    }
    key = "spark.driver.extraJavaOptions"
    settings[key] = with_class_archive(settings[key])
    return settings


def get_spark(master: str | None = "local[*]", app_name: str = "mparticle-meta-backfill",
              conf: Mapping[str, str] | None = None) -> SparkSession:
    """Return the job's SparkSession.

    Parameters
    ----------
    master:
        Used only in embedded mode; ignored when a launcher already chose one.
    conf:
        Extra settings (static ones apply in embedded mode only).
    """
    conf = dict(conf or {})
    if launched_by_spark_submit():
        spark = SparkSession.builder.appName(app_name).getOrCreate()
        log.info("using the launcher's Spark session (master: %s)",
                 spark.conf.get("spark.master", None) or "unknown")
        check_delta(spark)
        for key, value in {**RUNTIME_CONF, **conf}.items():
            try:
                spark.conf.set(key, value)
            except Exception:  # static settings belong to spark-submit --conf
                pass
        return spark

    # Python workers (and executors' workers in local-cluster mode) run this interpreter, so
    # they see the same installed packages as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(master or "local[*]")
    for key, value in embedded_settings(conf).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("BACKFILL_SPARK_LOG_LEVEL", "WARN"))
    return spark
