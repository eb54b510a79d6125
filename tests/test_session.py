"""The embedded session's settings reach its JVM, and a caller's settings win."""

from __future__ import annotations

from pathlib import Path

import jobs.session
from jobs.session import (
    CLASS_ARCHIVE_NAME,
    EMBEDDED_JAVA_OPTIONS,
    RUNTIME_CONF,
    class_archive,
    embedded_settings,
    jars_folder,
    with_class_archive,
)

ARCHIVE_FLAG = "-XX:SharedArchiveFile="


def java_options(settings: dict[str, str]) -> list[str]:
    return settings["spark.driver.extraJavaOptions"].split()


def test_the_embedded_driver_uses_the_throughput_collector_unless_told_otherwise(monkeypatch,
                                                                                 tmp_path):
    monkeypatch.setattr(jobs.session, "class_archive", lambda: tmp_path / "none.jsa")
    assert java_options(embedded_settings()) == ["-XX:+UseParallelGC"]
    mine = embedded_settings({"spark.driver.extraJavaOptions": "-XX:+UseSerialGC"})
    assert java_options(mine) == ["-XX:+UseSerialGC"]
    assert RUNTIME_CONF.items() <= mine.items()


def test_the_class_archive_is_added_to_any_driver_options_once_it_exists(monkeypatch, tmp_path):
    archive = tmp_path / "spark-classes.jsa"
    monkeypatch.setattr(jobs.session, "class_archive", lambda: archive)
    assert with_class_archive("-Xmx2g") == "-Xmx2g"
    archive.write_bytes(b"x")
    for options in (EMBEDDED_JAVA_OPTIONS, "-XX:+UseSerialGC -Xmx2g"):
        added = with_class_archive(options).split()
        assert added[:len(options.split())] == options.split()
        assert f"{ARCHIVE_FLAG}{archive}" in added
    assert f"{ARCHIVE_FLAG}{archive}" in java_options(embedded_settings())
    # options that choose the sharing themselves are left as they are
    for own in ("-Xshare:off", "-XX:SharedArchiveFile=/elsewhere.jsa",
                "-XX:ArchiveClassesAtExit=/new.jsa"):
        assert with_class_archive(f"-Xmx2g {own}") == f"-Xmx2g {own}"


def test_the_java_options_of_the_settings_are_the_jvms(spark):
    # The suite's session asks for the serial collector (tests/conftest.py): its JVM runs it.
    jvm = spark.sparkContext._jvm
    beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    names = {beans.get(i).getName() for i in range(beans.size())}
    assert names == {"Copy", "MarkSweepCompact"}
    assert EMBEDDED_JAVA_OPTIONS not in spark.conf.get("spark.driver.extraJavaOptions")


def test_the_suites_driver_maps_the_class_archive_that_setup_wrote(spark):
    # `make setup` writes the archive (jobs/tools/class_archive.py) with the embedded options;
    # the suite's driver, with other collector and compiler options, maps it: the JVM keeps
    # only an archive it validated mapped into its memory.
    archive = class_archive()
    assert archive == jars_folder() / CLASS_ARCHIVE_NAME
    assert archive.is_file(), f"no class archive at {archive}: `make setup` writes it"
    pid = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getPid()
    assert str(archive) in Path(f"/proc/{pid}/maps").read_text()
