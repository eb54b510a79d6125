"""The conversion stages: listing, reading and parsing dumps, the transform to payloads.

Built on the driver as Spark plans; the work runs in the executors as JVM code (no Python on
the data path)."""
