"""How the input is split into Spark tasks.

Gzip files cannot be split, and Spark packs whole files into read partitions of up to
``spark.sql.files.maxPartitionBytes`` (128 MiB of *compressed* bytes by default, roughly six times
as much text). Sixteen 16 MB gzip files then make three partitions: on two cores one of them runs
alone while the other core idles, about a third of the scan. Asking for at least a few
partitions per core (``spark.sql.files.minPartitionNum``) keeps every core busy to the end; on an
input that already makes many partitions (a large dump) it changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

MIN_PARTITION_NUM = "spark.sql.files.minPartitionNum"
#: Read partitions asked for per core of the application (Spark's tuning guide: 2-3 tasks per
#: core), so that tasks of unequal length still end close together.
PARTITIONS_PER_CORE = 3


def balanced_partition_count(spark: SparkSession) -> int:
    """The least number of read partitions the conversion asks Spark for."""
    return PARTITIONS_PER_CORE * max(1, spark.sparkContext.defaultParallelism)


@contextmanager
def balanced_input_partitions(spark: SparkSession) -> Iterator[None]:
    """Within the block, file scans are split into at least :func:`balanced_partition_count`
    partitions, unless the session sets ``spark.sql.files.minPartitionNum`` itself (then its
    value is kept). The session's setting is restored afterwards."""
    if spark.conf.get(MIN_PARTITION_NUM, None) is not None:
        yield
        return
    spark.conf.set(MIN_PARTITION_NUM, str(balanced_partition_count(spark)))
    try:
        yield
    finally:
        spark.conf.unset(MIN_PARTITION_NUM)
