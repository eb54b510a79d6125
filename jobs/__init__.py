"""Entry points and Spark stages of the mParticle → Meta offline conversions backfill."""
