"""Text normalization shared by every column rule (SPEC §4, §8): trim, blanks, letters, case.

All builders are native Spark expressions (Java regex, ``translate``, ``lower``/``upper``); null in
gives null out unless a docstring says otherwise.

Case mapping and the JVM locale
-------------------------------
Spark's ``lower``/``upper`` are *not* locale-independent: for a string that holds any non-ASCII
character they call ``String.toLowerCase()``/``toUpperCase()`` with the JVM's default locale
(checked on Spark 4.2, with ``spark.sql.icu.caseMappings.enabled`` true or false). On a JVM whose
default locale is Turkish, ``lower("DİYARBAKIR")`` gives ``diyarbak`` + U+0131 (dotless i) +
``r``, where the root locale gives ``di`` + U+0307 + ``yarbakir``; Lithuanian adds combining dots.
Pure-ASCII strings take a fast path that is locale-independent, and :func:`lower_invariant` and
:func:`upper_invariant` pass them to it as they are (:func:`is_ascii`). In any other string they
first map the few characters that Java's locale-specific rules touch (Turkish/Azeri and
Lithuanian, the only locales with special casing) to their root-locale case, so the result is
the root-locale mapping (the same as Python's ``str.lower``/``str.upper``) whatever the JVM's
locale.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

#: Java regex class for the Unicode ``White_Space`` property (SPEC §8): space, tab, newline,
#: U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
WHITE_SPACE = r"\p{IsWhite_Space}"

#: The same set as characters (Unicode 15 ``White_Space``), for the regex-free trim below.
WHITE_SPACE_CHARS = (
    "\t\n\u000b\u000c\r \u0085\u00a0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_NOT_LETTER_OR_MARK = r"[^\p{L}\p{M}]"

# Characters that Java lower-cases differently in tr/az/lt: I, J, Į (lt: + dot above before
# accents), Ì, Í, Ĩ (lt), I (tr/az: dotless U+0131). Mapped to their root-locale lowercase first.
_LOWER_SPECIAL_FROM = "IJ\u012e\u00cc\u00cd\u0128"
_LOWER_SPECIAL_TO = _LOWER_SPECIAL_FROM.lower()
# Capital I with dot above: root lowercase is two code points, i + U+0307 (tr/az: plain i).
_CAPITAL_I_WITH_DOT = "\u0130"
# Java's Soft_Dotted set: tr/az upper-case i to İ; lt drops a U+0307 that follows one of these.
_SOFT_DOTTED = "\u0069\u006a\u012f\u0268\u0456\u0458\u1e2d\u1ecb"
_SOFT_DOTTED_UPPER = _SOFT_DOTTED.upper()


def trim_unicode(col: Column) -> Column:
    """Strip leading and trailing Unicode ``White_Space`` (SPEC §8).

    Unlike Spark's ``trim`` (spaces only) this removes tabs, newlines, U+00A0, U+2007, U+202F,
    U+3000 and every other ``White_Space`` character. Inner whitespace is kept.

    Examples
    --------
    >>> spark.range(1).select(trim_unicode(F.lit("\\u00a0 a b\\t\\n"))).first()[0]
    'a b'
    """
    # Spark's trim with a character set walks code points from both ends: no regex engine.
    return F.trim(col, F.lit(WHITE_SPACE_CHARS))


def blank_to_null(col: Column) -> Column:
    """:func:`trim_unicode`, and null when nothing is left (an empty or all-blank value).

    Examples
    --------
    >>> spark.range(1).select(blank_to_null(F.lit(" \\u3000 "))).first()[0] is None
    True
    """
    return empty_to_null(trim_unicode(col))


def empty_to_null(col: Column) -> Column:
    """The value, or null when it is ``""`` (:func:`blank_to_null` of a value already trimmed).

    Examples
    --------
    >>> spark.range(1).select(empty_to_null(F.lit(""))).first()[0] is None
    True
    """
    return F.when(col != F.lit(""), col)


def letters_only(col: Column) -> Column:
    """Keep only Unicode letters and combining marks (categories L and M), of any script.

    Whitespace, punctuation, digits and symbols are removed; nothing is normalized (a decomposed
    ``e`` + U+0301 stays two code points). May return ``""``.

    Examples
    --------
    >>> spark.range(1).select(letters_only(F.lit("Jean-Luc O'Neil 3rd"))).first()[0]
    'JeanLucONeilrd'
    """
    return F.regexp_replace(col, _NOT_LETTER_OR_MARK, "")


def lower_invariant(col: Column) -> Column:
    """Lower-case with the root locale's rules, whatever the JVM's default locale.

    Full Unicode case mapping as in Java's ``toLowerCase(Locale.ROOT)`` and Python's
    ``str.lower``: ``İ`` (U+0130) becomes ``i`` + U+0307, ``I`` becomes ``i`` (never the Turkish
    dotless U+0131), a final capital sigma becomes ``ς``. See the module notes for why Spark's
    ``lower`` alone is not enough.

    Examples
    --------
    >>> spark.range(1).select(lower_invariant(F.lit("DİYARBAKIR"))).first()[0]
    'di̇yarbakir'
    """
    root_mapped = F.translate(
        F.replace(col, F.lit(_CAPITAL_I_WITH_DOT), F.lit("i\u0307")), _LOWER_SPECIAL_FROM,
        _LOWER_SPECIAL_TO,
    )
    # ASCII text takes Spark's locale-independent path as it is: the mapping (a hash lookup
    # per character) is only for text with other characters.
    return F.when(is_ascii(col), F.lower(col)).otherwise(F.lower(root_mapped))


def upper_invariant(col: Column) -> Column:
    """Upper-case with the root locale's rules, whatever the JVM's default locale.

    As Java's ``toUpperCase(Locale.ROOT)`` and Python's ``str.upper``: ``i`` becomes ``I``
    (never the Turkish ``İ``), ``ß`` becomes ``SS``.

    Examples
    --------
    >>> spark.range(1).select(upper_invariant(F.lit("Türkiye"))).first()[0]
    'TÜRKIYE'
    """
    return F.when(is_ascii(col), F.upper(col)).otherwise(
        F.upper(F.translate(col, _SOFT_DOTTED, _SOFT_DOTTED_UPPER)))


def is_ascii(col: Column) -> Column:
    """True when every character is ASCII (as many characters as UTF-8 bytes). Null → null.

    Examples
    --------
    >>> spark.range(1).select(is_ascii(F.lit("Zo\u00eb"))).first()[0]
    False
    """
    return F.length(col) == F.octet_length(col)
