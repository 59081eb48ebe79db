"""``pattern`` means what ECMA-262 says, on Python's ``re`` and on RE2: checked against ``regress``
(Rust's ECMA-262 engine) on random patterns from ECMA's grammar and random strings."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from elt_sdk import ecma

import regress  # noqa: E402 - the dev extra's ECMA-262 engine: the oracle

# characters where the dialects disagree: Unicode digits and letters, ECMA's white space, line
# terminators, an astral code point
ALPHABET = "ab_Z09-. \t\n\r\x0b\x0c\u00a0\ufeff\u2028\u2029\u3000é中١٢\uff11😀$^\\"
SYNTAX = set("^$\\.*+?()[]{}|/")


def _literal(c: str) -> str:
    return "\\" + c if c in SYNTAX else {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c, c)


def _class_member() -> st.SearchStrategy[str]:
    plain = [c for c in ALPHABET if c not in "\\]^-"]
    return st.one_of(
        st.sampled_from(plain),
        st.sampled_from(["\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "\\-", "\\]", "\\\\", "\\b", "\\u00e9", "\\x41"]),
        st.tuples(st.sampled_from("a0A"), st.sampled_from("z9Z")).map(lambda t: f"{t[0]}-{t[1]}"),
    )


_ATOMS = st.one_of(
    st.sampled_from(list(ALPHABET)).map(_literal),
    st.sampled_from([".", "\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "\\u0661", "\\u{1F600}", "\\x2D", "\\cJ", "\\0",
                     "\\/", "\\-", "\\uD83D\\uDE00"]),
    st.tuples(st.booleans(), st.lists(_class_member(), max_size=4)).map(lambda t: "[" + "^" * t[0] + "".join(t[1]) + "]"),
)
_QUANTIFIERS = st.sampled_from(["", "", "", "*", "+", "?", "{2}", "{1,}", "{0,2}", "*?", "+?", "??", "{1,3}?"])
_ASSERTIONS = st.sampled_from(["^", "$", "\\b", "\\B"])


def _patterns() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        group = st.tuples(st.sampled_from(["(", "(?:", "(?=", "(?!"]), inner).map(lambda t: f"{t[0]}{t[1]})")
        quantified_group = st.tuples(st.sampled_from(["(", "(?:"]), inner, _QUANTIFIERS).map(lambda t: f"{t[0]}{t[1]}){t[2]}")
        seq = st.lists(st.one_of(inner, group, quantified_group), min_size=1, max_size=3).map("".join)
        return st.one_of(seq, st.lists(seq, min_size=2, max_size=3).map("|".join))

    term = st.one_of(st.tuples(_ATOMS, _QUANTIFIERS).map("".join), _ASSERTIONS)
    return st.recursive(term, extend, max_leaves=6)


_STRINGS = st.text(alphabet=ALPHABET, max_size=8)
_SETTINGS = settings(max_examples=int(__import__("os").environ.get("ELT_ECMA_EXAMPLES", "600")), deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _ecma(pattern: str, text: str, flags: str = "u") -> bool:
    return regress.Regex(pattern, flags).find(text) is not None


def _re2(translated: str, texts: list[str]) -> list[bool]:
    return pc.match_substring_regex(pa.array(texts, pa.string()), translated).to_pylist()


@_SETTINGS
@given(pattern=_patterns(), texts=st.lists(_STRINGS, min_size=1, max_size=8))
@example(pattern="^\\d{4}$", texts=["1234", "١٢٣٤", "12345", "1234\n"])
@example(pattern="^\\w{2}$", texts=["中国", "ab", "é_"])
@example(pattern="^\\s+$", texts=["\u00a0\ufeff\u2028", " \t", "\u200b"])
@example(pattern="(a)|\\1b", texts=["b", "ab", "x"])
def test_translations_agree_with_ecma262(pattern: str, texts: list[str]) -> None:
    try:
        regress.Regex(pattern, "u")
    except regress.RegressError:
        assume(False)  # the grammar above can build a pattern ECMA refuses (a quantified look-ahead)
    try:
        python = ecma.compile_python(pattern)
    except ecma.EcmaPatternError:
        assume(False)  # refused on purpose (a back-reference into a quantified group): see the next test
    want = [_ecma(pattern, t) for t in texts]
    assert [python.search(t) is not None for t in texts] == want, python.pattern
    try:
        translated = ecma.to_re2(pattern)
    except ecma.EcmaPatternError:
        return  # look-around / back-references: the record path decides
    assert _re2(translated, texts) == want, translated


# pattern text with Python-only and broken syntax mixed in
_PIECES = st.sampled_from(["a", "b", "\\d", "\\w", "(", ")", "(?P<x>", "(?i)", "(?#c)", "(?>", "{,3}", "{2}", "{",
                           "}", "[", "]", "^", "$", "*", "+", "?", "|", "\\A", "\\Z", "\\z", "\\Q", "\\N{DIGIT ONE}",
                           "\\U0001F600", "\\a", "\\e", "\\1", "\\k<x>", "(?<x>", "\\p{L}", "[:alpha:]", "\\-", "\\@",
                           ".", "\\", "-", "\\c", "\\x4", "\\u12", "\\b", "\\B"])


@_SETTINGS
@given(pieces=st.lists(_PIECES, min_size=1, max_size=6), texts=st.lists(_STRINGS | st.just("a1-@"), min_size=1, max_size=6))
def test_what_is_accepted_is_ecma_and_means_what_ecma_says(pieces: list[str], texts: list[str]) -> None:
    """Any pattern the translator accepts is ECMA-262 (``u`` mode, or the Annex B identity escapes
    like ``\\-`` that it accepts on purpose) and matches as ECMA does; the rest is refused with a
    reason, never matched with Python's meaning."""
    pattern = "".join(pieces)
    try:
        python = ecma.compile_python(pattern)
    except ecma.EcmaPatternError as exc:
        assert str(exc)
        return
    flags = "u"
    try:
        regress.Regex(pattern, "u")
    except regress.RegressError:
        flags = ""  # accepted only for its Annex B identity escapes: then ECMA's legacy mode must agree
        assert "\\-" in pattern or "\\@" in pattern, pattern
        regress.Regex(pattern, "")
    assert [python.search(t) is not None for t in texts] == [_ecma(pattern, t, flags) for t in texts], pattern


@pytest.mark.parametrize("pattern, reason", [
    ("a{,3}", "starts no quantifier"),
    ("(?i)abc", "not ECMA-262"),
    ("(?P<x>a)", "not ECMA-262"),
    ("\\Aabc\\Z", "not an ECMA-262 escape"),
    ("a*+", "cannot follow a quantifier"),
    ("\\p{Letter}", "property escapes"),
    ("(a)*\\1", "inside a quantifier"),
    ("(?<=a+)b", "look-behind"),
    ("[z-a]", "out of order"),
    ("abc\\", "lone backslash"),
    ("(abc", "missing ')'"),
])
def test_refusals_say_why(pattern: str, reason: str) -> None:
    with pytest.raises(ecma.EcmaPatternError, match=reason.replace("(", "\\(").replace(")", "\\)")):
        ecma.to_python(pattern)


def test_re2_leaves_what_it_cannot_match_to_python() -> None:
    for pattern in ("(?=a)b", "(a)\\1", "a{2000}"):
        ecma.to_python(pattern)
        with pytest.raises(ecma.EcmaPatternError):
            ecma.to_re2(pattern)


def _constrains_place(node: ecma.Node) -> bool:
    """An assertion or a look-around: what ``sample`` does not honour."""
    if isinstance(node, ecma.Assertion):
        return True
    if isinstance(node, ecma.Group):
        return node.look is not None or _constrains_place(node.body)
    if isinstance(node, ecma.Repeat):
        return _constrains_place(node.body)
    if isinstance(node, (ecma.Seq, ecma.Alt)):
        return any(_constrains_place(n) for n in (node.items if isinstance(node, ecma.Seq) else node.options))
    return False


@_SETTINGS
@given(pattern=_patterns(), seed=st.integers(0, 2**32 - 1))
@example(pattern="(a)|\\1b", seed=1)
@example(pattern="[^x]{3}.", seed=2)
@example(pattern="\\S\\D\\W", seed=3)
def test_a_sample_is_matched_whole_by_ecma262(pattern: str, seed: int) -> None:
    """``ecma.sample`` (the default fake records' strings for a ``pattern``) draws a string the
    pattern matches from start to end, by ECMA-262's engine, and never a lone surrogate."""
    import random

    try:
        regress.Regex(pattern, "u")
        node, _ = ecma.parse(pattern)
    except (regress.RegressError, ecma.EcmaPatternError):
        assume(False)
    assume(not _constrains_place(node))
    try:
        text = ecma.sample(pattern, random.Random(seed))
    except ecma.EcmaPatternError as exc:  # an empty class, [], matches nothing
        assert "matches no character" in str(exc)
        return
    assert _ecma(f"^(?:{pattern})$", text), (pattern, text)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def test_a_sample_prefers_printable_ascii_and_draws_anchored_patterns() -> None:
    import random

    rng = random.Random(4)
    ids = {ecma.sample("^SHP-[0-9]{8}$", rng) for _ in range(200)}
    assert len(ids) == 200 and all(ecma.compile_python("^SHP-[0-9]{8}$").search(i) for i in ids)
    assert all(" " <= c <= "~" for _ in range(200) for c in ecma.sample(".{3}[^a]\\W", rng))
    assert all(ord(c) > 0x7E and not 0xD800 <= ord(c) <= 0xDFFF for c in ecma.sample("[^\\x00-\\x7e]{50}", rng))
