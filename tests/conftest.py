"""Shared fixtures: one Spark session for the whole suite, fresh Delta paths per test."""

from __future__ import annotations

import pytest

from jobs.session import get_spark

#: Fast-test settings measured on a 2-core machine (see ../shared/STYLE.md).
TEST_CONF = {
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.rdd.compress": "false",
    "spark.shuffle.compress": "false",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
}


#: The longest test files (minutes each), run first so that the workers of ``make test``
#: (``pytest -n 3 --dist loadfile``) finish together; the order is otherwise the collection's.
LONGEST_FIRST = ("tests/tools/test_benchmark.py", "tests/upload/test_driver.py",
                 "tests/test_cluster.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in LONGEST_FIRST)


@pytest.fixture(scope="session")
def spark():
    session = get_spark(master="local[1]", app_name="backfill-tests", conf=TEST_CONF)
    yield session
    session.stop()


@pytest.fixture
def delta_dir(tmp_path):
    """A fresh folder for a test's Delta tables."""
    return tmp_path / "delta"
