"""The embedded session's settings reach its JVM, and a caller's settings win."""

from __future__ import annotations

from jobs.session import EMBEDDED_JAVA_OPTIONS, RUNTIME_CONF, embedded_settings


def test_the_embedded_driver_uses_the_throughput_collector_unless_told_otherwise():
    assert embedded_settings()["spark.driver.extraJavaOptions"] == "-XX:+UseParallelGC"
    mine = embedded_settings({"spark.driver.extraJavaOptions": "-XX:+UseSerialGC"})
    assert mine["spark.driver.extraJavaOptions"] == "-XX:+UseSerialGC"
    assert RUNTIME_CONF.items() <= mine.items()


def test_the_java_options_of_the_settings_are_the_jvms(spark):
    # The suite's session asks for the serial collector (tests/conftest.py): its JVM runs it.
    jvm = spark.sparkContext._jvm
    beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    names = {beans.get(i).getName() for i in range(beans.size())}
    assert names == {"Copy", "MarkSweepCompact"}
    assert EMBEDDED_JAVA_OPTIONS not in spark.conf.get("spark.driver.extraJavaOptions")
