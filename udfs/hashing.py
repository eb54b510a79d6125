"""SHA-256 of match keys (SPEC §4): hex digests, and the "already hashed" pass-through."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from udfs.text import trim_unicode

_SHA256_HEX = r"\A[0-9a-fA-F]{64}\z"


def sha256_hex(col: Column) -> Column:
    """Lowercase hex SHA-256 of the value's UTF-8 bytes. Null → null.

    Examples
    --------
    >>> spark.range(1).select(sha256_hex(F.lit("us"))).first()[0]
    '79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621'
    """
    return F.sha2(col, 256)


def is_sha256_hex(col: Column) -> Column:
    """True when the value is exactly 64 hex characters, either case (nothing around them, not
    even a trailing newline). Null → null.

    Examples
    --------
    >>> spark.range(1).select(is_sha256_hex(F.lit("AB" * 32))).first()[0]
    True
    """
    # The length first: a byte count, where the regex decodes the text.
    return (F.octet_length(col) == F.lit(64)) & col.rlike(_SHA256_HEX)


def hash_unless_hashed(raw: Column, normalized: Column) -> Column:
    """The value of a hashed match key (SPEC §4), or null when the key is omitted.

    When ``raw``, after :func:`~udfs.text.trim_unicode`, is exactly 64 hex characters it is taken
    as a hash already: lower-cased and not hashed again. Otherwise the SHA-256 of
    ``normalized`` (the key's own normalization of ``raw``), or null when ``normalized`` is null
    (invalid) or empty.

    Examples
    --------
    >>> name = F.lit(" Menlo Park ")
    >>> from udfs.text import letters_only, lower_invariant
    >>> spark.range(1).select(
    ...     hash_unless_hashed(name, letters_only(lower_invariant(name)))).first()[0]
    '0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685'
    """
    trimmed = trim_unicode(raw)
    return (
        F.when(is_sha256_hex(trimmed), F.lower(trimmed))
        .when(normalized != F.lit(""), sha256_hex(normalized))
    )
