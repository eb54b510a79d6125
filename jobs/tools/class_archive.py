"""``make setup``'s last step: the class-data archive of the embedded driver.

A cold JVM spends seconds reading, checking and defining the classes of Spark's jars before the
job does any work. Java's class-data sharing maps them from an archive instead. This module
writes that archive (``.jars/spark-classes.jsa``, see ``jobs.session.class_archive``): it runs
the job's dry run on the bundled sample in a driver started with ``-XX:ArchiveClassesAtExit``,
and the JVM writes every class it loaded from the class path as it exits. Embedded sessions
then start with ``-XX:SharedArchiveFile`` (``jobs.session.with_class_archive``).

The archive belongs to this JDK and these jars: after either changes the JVM ignores it, and
``make setup`` (which rebuilds it after a new install) makes a new one. Classes of the jars
given by ``spark.jars`` (Delta Lake's, the job's) are loaded by Spark's own class loader and are
not archived.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from jobs.session import EMBEDDED_JAVA_OPTIONS, REPO_ROOT, class_archive, get_spark

SAMPLE = REPO_ROOT / "jobs" / "samples" / "sample_dump"
JVM_EXIT_SECONDS = 300


def build(archive: Path) -> int:
    """Write ``archive``; return its size in bytes. The file appears whole or not at all."""
    from pyspark import SparkContext

    from jobs.config import load_config
    from jobs.pipeline import run_backfill

    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="class-archive-") as tmp:
        written = archive.with_name(archive.name + ".partial")
        written.unlink(missing_ok=True)
        # -Xlog:cds=off: the JVM lists each class it cannot archive (generated, signed) as a
        # warning; a thousand such lines say nothing to the one running `make setup`.
        options = (f"{EMBEDDED_JAVA_OPTIONS} -XX:ArchiveClassesAtExit={written}"
                   " -Xlog:cds=off -Xlog:cds+dynamic=off")
        config = load_config(REPO_ROOT / "conf" / "local.yaml", {
            "input": [str(SAMPLE)], "output_dir": str(Path(tmp) / "out"), "dry_run": True,
            "progress": "off", "spark.master": "local[2]",
            "spark.conf.spark.driver.extraJavaOptions": options})
        spark = get_spark(config.spark.master, "class-archive", config.spark.conf)
        report = run_backfill(spark, config, None)
        if report.status != "succeeded":
            raise RuntimeError(f"the training dry run ended {report.status}: {report.message}")
        gateway = SparkContext._gateway
        assert gateway is not None
        proc = gateway.proc
        spark.stop()
        gateway.shutdown()
        proc.stdin.close()  # the JVM exits on the end of its input, writing the archive
        if proc.wait(JVM_EXIT_SECONDS) != 0 or not written.is_file():
            raise RuntimeError(f"the JVM exited with {proc.returncode} without an archive")
        os.replace(written, archive)
    return archive.stat().st_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archive", type=Path, default=None,
                    help=f"where to write it (default: {class_archive()})")
    args = ap.parse_args(argv)
    archive = args.archive or class_archive()
    try:
        size = build(archive)
    except Exception as exc:  # the job runs without an archive, only its start is slower
        print(f"class archive not written ({exc}); the job starts without it", file=sys.stderr)
        return 1
    print(f"class archive: {archive} ({size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
