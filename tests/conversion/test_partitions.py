"""Read partitions: whole gzip files spread over the cores instead of packed into a few."""

from __future__ import annotations

import gzip
import json

from jobs.conversion.partitions import (
    MIN_PARTITION_NUM,
    balanced_input_partitions,
    balanced_partition_count,
)
from jobs.conversion.read import raw_lines


def _gzip_files(folder, count):
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"part-{i}.json.gz"
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(json.dumps({"events": [], "mpid": str(i)}) + "\n")
        paths.append(str(path))
    return paths


def test_small_gzip_files_are_read_in_a_few_partitions_per_core(spark, tmp_path):
    files = _gzip_files(tmp_path / "dump", 6)
    packed = raw_lines(spark, files).rdd.getNumPartitions()
    with balanced_input_partitions(spark):
        spread = raw_lines(spark, files)
        assert spread.rdd.getNumPartitions() == balanced_partition_count(spark) > packed
        assert spread.count() == 6
    assert spark.conf.get(MIN_PARTITION_NUM, None) is None  # the session is left as it was


def test_a_partition_count_the_session_sets_is_kept(spark, tmp_path):
    files = _gzip_files(tmp_path / "dump", 6)
    spark.conf.set(MIN_PARTITION_NUM, "2")
    try:
        with balanced_input_partitions(spark):
            assert raw_lines(spark, files).rdd.getNumPartitions() == 2
        assert spark.conf.get(MIN_PARTITION_NUM) == "2"
    finally:
        spark.conf.unset(MIN_PARTITION_NUM)
