"""JSON Schema ``pattern`` as ECMA-262 means it, on Python's ``re`` and on RE2.

JSON Schema specifies ECMA-262 regular expressions; Python's ``re`` (what fastjsonschema compiles)
and RE2 (Arrow's regex kernels) differ from it: Python's ``\\d`` matches every Unicode digit,
``\\w`` every Unicode letter, ``$`` matches before a final newline, ``.`` matches ``\\r``;
``{,3}``, ``(?i)``, ``\\A`` or ``*+`` mean something in Python and are errors in ECMA-262.

A pattern is parsed once, by ECMA-262's grammar (the ``u``-flag dialect JSON Schema's test
suite assumes: code points, strict escapes), into a tree, and the tree is written out for each
engine with ECMA's meaning: every character class (``\\d`` is ``[0-9]``, ``\\w`` is
``[A-Za-z0-9_]``, ``\\s`` is ECMA's white space and line terminators, ``.`` excludes line
terminators) becomes an explicit set of code-point ranges, ``$`` is the end of input, ``\\b`` an
ASCII word boundary, and a back-reference to a group that did not take part matches the empty
string. One leniency over the ``u`` dialect, because real schemas carry it and its meaning is
unambiguous: a backslash before a character that is neither a letter nor a digit (``\\-``,
``\\@``) is that character.

What ECMA-262 does not have, or what an engine cannot match with ECMA's meaning, raises
``EcmaPatternError`` with the reason: a schema using it is refused at load (Python), or its
pattern is left to the record path (RE2: look-around and back-references). Unicode property
escapes (``\\p{L}``) are refused: Python's ``re`` has no equivalent.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Union

__all__ = ["EcmaPatternError", "compile_python", "sample", "to_python", "to_re2"]

MAX_CODE_POINT = 0x10FFFF
RE2_MAX_REPEAT = 1000
PYTHON_MAX_REPEAT = 65535

Ranges = tuple[tuple[int, int], ...]


class EcmaPatternError(ValueError):
    """A pattern that is not ECMA-262, or that this engine cannot match with ECMA's meaning."""


def _normalise(ranges: list[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _negate(ranges: Ranges) -> Ranges:
    out, start = [], 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return tuple(out)


DIGIT: Ranges = ((0x30, 0x39),)
WORD: Ranges = _normalise([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
# ECMA-262 WhiteSpace (TAB VT FF SP NBSP ZWNBSP and Unicode Zs) and LineTerminator (LF CR LS PS)
SPACE: Ranges = _normalise([(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                            (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
                            (0xFEFF, 0xFEFF)])
LINE_TERMINATORS: Ranges = _normalise([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)])
CLASS_ESCAPES = {"d": DIGIT, "D": _negate(DIGIT), "w": WORD, "W": _negate(WORD), "s": SPACE, "S": _negate(SPACE)}
CONTROL_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D}
SYNTAX_CHARACTERS = set("^$\\.*+?()[]{}|/")


# -- the tree ------------------------------------------------------------------------------------

@dataclass
class Set:
    ranges: Ranges


@dataclass
class Assertion:
    kind: str  # "^" "$" "b" "B"


@dataclass
class Group:
    body: "Node"
    index: int | None = None  # capturing groups are numbered from 1
    name: str | None = None
    look: str | None = None  # "=" "!" "<=" "<!" for look-around


@dataclass
class Repeat:
    body: "Node"
    low: int
    high: int | None
    lazy: bool


@dataclass
class BackRef:
    index: int
    name: str | None = None


@dataclass
class Seq:
    items: list["Node"] = field(default_factory=list)


@dataclass
class Alt:
    options: list["Node"]


Node = Union[Set, Assertion, Group, Repeat, BackRef, Seq, Alt]


# -- parsing -------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.groups = 0
        self.names: dict[str, int] = {}
        self.refs: list[tuple[BackRef, int]] = []  # with the position they were read at

    def error(self, message: str) -> EcmaPatternError:
        return EcmaPatternError(f"{message} (at position {self.i} of {self.p!r})")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def parse(self) -> Node:
        node = self.disjunction()
        if self.i < len(self.p):
            raise self.error("unmatched ')'")
        for ref, _ in self.refs:
            if ref.name is not None:
                if ref.name not in self.names:
                    raise self.error(f"\\k<{ref.name}> names no group")
                ref.index = self.names[ref.name]
            if ref.index > self.groups:
                raise self.error(f"back-reference \\{ref.index} to a group that does not exist")
        return node

    def disjunction(self) -> Node:
        options = [self.alternative()]
        while self.peek() == "|":
            self.i += 1
            options.append(self.alternative())
        return options[0] if len(options) == 1 else Alt(options)

    def alternative(self) -> Seq:
        seq = Seq()
        while self.i < len(self.p) and self.peek() not in "|)":
            seq.items.append(self.term())
        return seq

    def term(self) -> Node:
        c = self.peek()
        if c == "^" or c == "$":
            self.i += 1
            self.no_quantifier(c)
            return Assertion(c)
        if c == "\\" and self.peek(1) in ("b", "B"):
            self.i += 2
            self.no_quantifier("\\" + self.p[self.i - 1])
            return Assertion(self.p[self.i - 1])
        if c == "(" and self.p.startswith(("(?=", "(?!", "(?<=", "(?<!"), self.i):
            look = "=" if self.p.startswith("(?=", self.i) else "!" if self.p.startswith("(?!", self.i) else \
                "<=" if self.p.startswith("(?<=", self.i) else "<!"
            self.i += 2 + len(look)
            body = self.disjunction()
            self.close()
            self.no_quantifier("a look-around")
            return Group(body, look=look)
        start = self.i
        atom = self.atom()
        return self.quantified(atom, start)

    def no_quantifier(self, what: str) -> None:
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self.quantifier_at(self.i)):
            raise self.error(f"nothing to repeat: {what} cannot take a quantifier")

    def quantifier_at(self, i: int) -> tuple[int, int | None, int] | None:
        m = re.compile(r"\{([0-9]+)(,([0-9]*))?\}").match(self.p, i)
        if not m:
            return None
        low = int(m.group(1))
        high = low if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
        return low, high, m.end()

    def quantified(self, atom: Node, start: int) -> Node:
        c = self.peek()
        if c in ("*", "+", "?"):
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            self.i += 1
        elif c == "{":
            q = self.quantifier_at(self.i)
            if q is None:
                raise self.error("'{' that starts no quantifier (write \\{ for the character)")
            low, high, self.i = q
            if high is not None and high < low:
                raise self.error("numbers out of order in {} quantifier")
        else:
            return atom
        lazy = self.peek() == "?"
        if lazy:
            self.i += 1
        if self.peek() in ("*", "+", "?", "{") and (self.peek() != "{" or self.quantifier_at(self.i)):
            raise self.error("a quantifier cannot follow a quantifier (possessive and repeated quantifiers are not ECMA-262)")
        return Repeat(atom, low, high, lazy)

    def close(self) -> None:
        if self.peek() != ")":
            raise self.error("missing ')'")
        self.i += 1

    def atom(self) -> Node:
        c = self.peek()
        if c == ".":
            self.i += 1
            return Set(_negate(LINE_TERMINATORS))
        if c == "(":
            return self.group()
        if c == "[":
            return self.char_class()
        if c == "\\":
            return self.atom_escape()
        if c in ("*", "+", "?"):
            raise self.error(f"nothing to repeat before {c!r}")
        if c == "{":
            if self.quantifier_at(self.i):
                raise self.error("nothing to repeat before '{'")
            raise self.error("'{' that starts no quantifier (write \\{ for the character)")
        if c in ("}", "]"):
            raise self.error(f"lone {c!r} (write \\{c} for the character)")
        self.i += 1
        return Set(((ord(c), ord(c)),))

    def group(self) -> Node:
        self.i += 1
        name = None
        if self.peek() == "?":
            if self.peek(1) == ":":
                self.i += 2
                body = self.disjunction()
                self.close()
                return Group(body)
            m = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>").match(self.p, self.i + 1)
            if not m:
                raise self.error(f"group syntax {self.p[self.i - 1:self.i + 3]!r} is not ECMA-262 "
                                 "(inline flags, (?P...), comments and atomic groups are Python's)")
            name = m.group(1)
            if name in self.names:
                raise self.error(f"duplicate group name {name!r}")
            self.i = m.end()
        self.groups += 1
        index = self.groups
        if name is not None:
            self.names[name] = index
        body = self.disjunction()
        self.close()
        return Group(body, index=index, name=name)

    def atom_escape(self) -> Node:
        e = self.peek(1)
        if e == "":
            raise self.error("pattern ends with a lone backslash")
        if e in "123456789":
            m = re.compile(r"[0-9]+").match(self.p, self.i + 1)
            assert m
            self.i = m.end()
            ref = BackRef(int(m.group(0)))
            self.refs.append((ref, self.i))
            return ref
        if e == "k":
            m = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>").match(self.p, self.i + 2)
            if not m:
                raise self.error("\\k must name a group: \\k<name>")
            self.i = m.end()
            ref = BackRef(0, m.group(1))
            self.refs.append((ref, self.i))
            return ref
        return Set(self.class_escape(in_class=False))

    def class_escape(self, in_class: bool) -> Ranges:
        """The escape at ``self.i`` (a backslash), as a set; advances past it."""
        e = self.peek(1)
        self.i += 2
        if e in CLASS_ESCAPES:
            return CLASS_ESCAPES[e]
        if e in CONTROL_ESCAPES:
            return ((CONTROL_ESCAPES[e],) * 2,)
        if e == "b" and in_class:
            return ((0x08, 0x08),)
        if e == "-" and in_class:
            return ((0x2D, 0x2D),)
        if e == "0":
            if self.peek().isdigit():
                raise self.error("legacy octal escapes are not ECMA-262 in unicode mode")
            return ((0, 0),)
        if e == "c":
            letter = self.peek()
            if letter.isascii() and letter.isalpha():
                self.i += 1
                return ((ord(letter) % 32,) * 2,)
            raise self.error("\\c must be followed by a letter")
        if e == "x":
            m = re.compile(r"[0-9A-Fa-f]{2}").match(self.p, self.i)
            if not m:
                raise self.error("\\x must be followed by two hex digits")
            self.i = m.end()
            return ((int(m.group(0), 16),) * 2,)
        if e == "u":
            cp = self.unicode_escape()
            return ((cp, cp),)
        if e in ("p", "P"):
            raise self.error(f"Unicode property escapes (\\{e}{{...}}) are not supported (Python's re has no equivalent)")
        if e.isascii() and e.isalnum():
            raise self.error(f"\\{e} is not an ECMA-262 escape")
        return ((ord(e), ord(e)),)  # identity escape: the character itself

    def unicode_escape(self) -> int:
        if self.peek() == "{":
            m = re.compile(r"\{([0-9A-Fa-f]+)\}").match(self.p, self.i)
            if not m or int(m.group(1), 16) > MAX_CODE_POINT:
                raise self.error("\\u{...} must hold a code point in hex")
            self.i = m.end()
            return int(m.group(1), 16)
        m = re.compile(r"[0-9A-Fa-f]{4}").match(self.p, self.i)
        if not m:
            raise self.error("\\u must be followed by four hex digits")
        self.i = m.end()
        cp = int(m.group(0), 16)
        if 0xD800 <= cp <= 0xDBFF:  # a surrogate pair written as two escapes is one code point
            m2 = re.compile(r"\\u(d[c-f][0-9a-f]{2})", re.I).match(self.p, self.i)
            if m2:
                self.i = m2.end()
                return 0x10000 + ((cp - 0xD800) << 10) + (int(m2.group(1), 16) - 0xDC00)
        return cp

    def char_class(self) -> Set:
        self.i += 1
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        parts: list[tuple[int, int]] = []
        while True:
            if self.i >= len(self.p):
                raise self.error("unterminated character class")
            if self.peek() == "]":
                self.i += 1
                break
            lo = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                hi = self.class_atom()
                if len(lo) != 1 or lo[0][0] != lo[0][1] or len(hi) != 1 or hi[0][0] != hi[0][1]:
                    raise self.error("a class escape cannot bound a range")
                if hi[0][0] < lo[0][0]:
                    raise self.error("range out of order in character class")
                parts.append((lo[0][0], hi[0][0]))
            else:
                parts.extend(lo)
        ranges = _normalise(parts)
        return Set(_negate(ranges) if negated else ranges)

    def class_atom(self) -> Ranges:
        c = self.peek()
        if c == "\\":
            return self.class_escape(in_class=True)
        self.i += 1
        return ((ord(c), ord(c)),)


def _mark_context(node: Node, quantified: bool, look: bool, context: dict[int, tuple[bool, bool]]) -> None:
    """Which groups sit inside a quantifier or a look-around (a back-reference to them would
    depend on capture semantics where Python and ECMA-262 differ)."""
    if isinstance(node, Group):
        if node.index is not None:
            context[node.index] = (quantified, look)
        _mark_context(node.body, quantified, look or node.look is not None, context)
    elif isinstance(node, Repeat):
        _mark_context(node.body, quantified or node.high != 1 or node.low != 1, look, context)
    elif isinstance(node, Seq):
        for item in node.items:
            _mark_context(item, quantified, look, context)
    elif isinstance(node, Alt):
        for option in node.options:
            _mark_context(option, quantified, look, context)


@lru_cache(maxsize=1024)
def parse(pattern: str) -> tuple[Node, dict[int, tuple[bool, bool]]]:
    """The tree of an ECMA-262 pattern, and for each capturing group whether it sits inside a
    quantifier or a look-around."""
    if not isinstance(pattern, str):
        raise EcmaPatternError(f"a pattern must be a string, got {type(pattern).__name__}")
    parser = _Parser(pattern)
    node = parser.parse()
    context: dict[int, tuple[bool, bool]] = {}
    _mark_context(node, False, False, context)
    for ref, _ in parser.refs:
        quantified, look = context.get(ref.index, (False, False))
        if quantified or look:
            raise EcmaPatternError(f"back-reference \\{ref.index} to a group inside a quantifier or look-around: "
                                   f"ECMA-262 and Python capture differently there ({pattern!r})")
        if _encloses(node, ref.index, ref):
            raise EcmaPatternError(f"back-reference \\{ref.index} inside the group it refers to ({pattern!r})")
    return node, context


def _encloses(node: Node, index: int, ref: BackRef) -> bool:
    """Is ``ref`` inside group ``index``?"""
    def contains(n: Node) -> bool:
        if n is ref:
            return True
        if isinstance(n, (Group, Repeat)):
            return contains(n.body)
        if isinstance(n, Seq):
            return any(contains(i) for i in n.items)
        if isinstance(n, Alt):
            return any(contains(o) for o in n.options)
        return False

    def find(n: Node) -> bool:
        if isinstance(n, Group) and n.index == index:
            return contains(n.body)
        if isinstance(n, (Group, Repeat)):
            return find(n.body)
        if isinstance(n, Seq):
            return any(find(i) for i in n.items)
        if isinstance(n, Alt):
            return any(find(o) for o in n.options)
        return False

    return find(node)


# -- writing -------------------------------------------------------------------------------------

def _py_char(cp: int) -> str:
    if cp < 0x80 and (chr(cp).isalnum() or chr(cp) == "_"):
        return chr(cp)
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _re2_char(cp: int) -> str:
    if cp < 0x80 and (chr(cp).isalnum() or chr(cp) == "_"):
        return chr(cp)
    return f"\\x{{{cp:x}}}"


_PY_WORD_BOUNDARY = "(?:(?<=[0-9A-Z_a-z])(?![0-9A-Z_a-z])|(?<![0-9A-Z_a-z])(?=[0-9A-Z_a-z]))"
_PY_NOT_WORD_BOUNDARY = "(?:(?<=[0-9A-Z_a-z])(?=[0-9A-Z_a-z])|(?<![0-9A-Z_a-z])(?![0-9A-Z_a-z]))"


def _write(node: Node, dialect: str) -> str:
    char = _py_char if dialect == "python" else _re2_char
    if isinstance(node, Set):
        ranges = node.ranges
        if dialect == "re2":  # UTF-8 text holds no surrogates, and RE2 refuses them in a class
            ranges = tuple((lo, hi) for lo, hi in _clip(ranges, 0xD800, 0xDFFF))
        if not ranges:
            return "(?!)" if dialect == "python" else "[^\\x00-\\x{10ffff}]"
        if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
            return char(ranges[0][0])
        body = "".join(char(lo) if lo == hi else f"{char(lo)}-{char(hi)}" for lo, hi in ranges)
        return f"[{body}]"
    if isinstance(node, Assertion):
        if node.kind == "^":
            return "^" if dialect == "re2" else "\\A"
        if node.kind == "$":
            return "\\z" if dialect == "re2" else "\\Z"
        if dialect == "re2":
            if node.kind == "B":  # RE2 looks at bytes: it finds a non-boundary inside a multi-byte character
                raise EcmaPatternError("\\B cannot be matched by RE2 on UTF-8 text")
            return "\\b"  # ASCII, like ECMA's
        # Python's \b is Unicode, and its \B never matches an empty string: spelt out
        return _PY_WORD_BOUNDARY if node.kind == "b" else _PY_NOT_WORD_BOUNDARY
    if isinstance(node, Seq):
        return "".join(_write(item, dialect) for item in node.items)
    if isinstance(node, Alt):
        return "|".join(_write(option, dialect) for option in node.options)
    if isinstance(node, Group):
        body = _write(node.body, dialect)
        if node.look is not None:
            if dialect == "re2":
                raise EcmaPatternError("look-around cannot be matched by RE2")
            return f"(?{node.look}{body})"
        if node.index is None:
            return f"(?:{body})"
        return f"(?P<{node.name}>{body})" if node.name and dialect == "python" else f"({body})"
    if isinstance(node, Repeat):
        body = _write(node.body, dialect)
        limit = RE2_MAX_REPEAT if dialect == "re2" else PYTHON_MAX_REPEAT
        if node.low > limit or (node.high is not None and node.high > limit):
            raise EcmaPatternError(f"a repeat count over {limit} is beyond {'RE2' if dialect == 're2' else 'Python re'}")
        if (node.low, node.high) == (0, None):
            q = "*"
        elif (node.low, node.high) == (1, None):
            q = "+"
        elif (node.low, node.high) == (0, 1):
            q = "?"
        elif node.high is None:
            q = f"{{{node.low},}}"
        elif node.high == node.low:
            q = f"{{{node.low}}}"
        else:
            q = f"{{{node.low},{node.high}}}"
        return f"(?:{body}){q}{'?' if node.lazy else ''}"
    if isinstance(node, BackRef):
        if dialect == "re2":
            raise EcmaPatternError("back-references cannot be matched by RE2")
        # ECMA-262: a group that has not taken part matches the empty string; Python's would fail
        return f"(?:(?({node.index})\\{node.index}))"
    raise AssertionError(node)  # pragma: no cover


def _clip(ranges: Ranges, lo: int, hi: int) -> list[tuple[int, int]]:
    out = []
    for a, b in ranges:
        if b < lo or a > hi:
            out.append((a, b))
            continue
        if a < lo:
            out.append((a, lo - 1))
        if b > hi:
            out.append((hi + 1, b))
    return out


@lru_cache(maxsize=1024)
def to_python(pattern: str) -> str:
    """``pattern`` (ECMA-262) as a Python ``re`` pattern with the same meaning (for ``search``)."""
    node, _ = parse(pattern)
    translated = _write(node, "python")
    try:
        re.compile(translated)
    except re.error as exc:  # e.g. a look-behind of variable width, which ECMA allows
        raise EcmaPatternError(f"Python's re cannot match {pattern!r}: {exc}") from None
    except (OverflowError, RecursionError) as exc:  # pragma: no cover - absurd patterns
        raise EcmaPatternError(f"Python's re cannot match {pattern!r}: {exc}") from None
    return translated


@lru_cache(maxsize=1024)
def to_re2(pattern: str) -> str:
    """``pattern`` (ECMA-262) as an RE2 pattern with the same meaning; raises EcmaPatternError
    where RE2 cannot express it (look-around, back-references, ``\\B``, repeats over 1000): such a pattern
    is decided on the record path only."""
    node, _ = parse(pattern)
    return _write(node, "re2")


@lru_cache(maxsize=1024)
def compile_python(pattern: str) -> "re.Pattern[str]":
    """The compiled Python pattern for ``pattern`` (ECMA-262); ``.search`` is ECMA's ``test``."""
    return re.compile(to_python(pattern))


# -- drawing a matching string ----------------------------------------------------------------------

SAMPLE_EXTRA_REPEATS = 8
"""How far past its minimum an unbounded (or wide) repeat draws."""
PRINTABLE_ASCII = (0x20, 0x7E)
SURROGATES = (0xD800, 0xDFFF)


def sample(pattern: str, rng: random.Random) -> str:
    """A string the pattern matches, drawn from its tree: printable ASCII where a set allows it,
    other code points (never a lone surrogate) where it does not. Look-arounds and word
    boundaries are not honoured, so a caller that needs certainty checks the result (the default
    fake records do, with the dataset's validator). Raises EcmaPatternError for a pattern that
    is not ECMA-262. (``rstr`` draws from Python patterns, but expands each character range into
    a list: ``.`` is 1.1M code points, seconds per string.)"""
    node, _ = parse(pattern)
    out: list[str] = []
    _draw(node, rng, out, {})
    return "".join(out)


def _draw(node: Node, rng: random.Random, out: list[str], groups: dict[int, str]) -> None:
    if isinstance(node, Set):
        out.append(_draw_char(node.ranges, rng))
    elif isinstance(node, Seq):
        for item in node.items:
            _draw(item, rng, out, groups)
    elif isinstance(node, Alt):
        _draw(rng.choice(node.options), rng, out, groups)
    elif isinstance(node, Repeat):
        high = node.low + SAMPLE_EXTRA_REPEATS if node.high is None else min(node.high, node.low + SAMPLE_EXTRA_REPEATS)
        for _ in range(rng.randint(node.low, high)):
            _draw(node.body, rng, out, groups)
    elif isinstance(node, Group):
        if node.look is None:
            start = len(out)
            _draw(node.body, rng, out, groups)
            if node.index is not None:
                groups[node.index] = "".join(out[start:])
    elif isinstance(node, BackRef):
        out.append(groups.get(node.index, ""))
    # an Assertion draws nothing


def _draw_char(ranges: Ranges, rng: random.Random) -> str:
    printable = [(max(a, PRINTABLE_ASCII[0]), min(b, PRINTABLE_ASCII[1])) for a, b in ranges
                 if a <= PRINTABLE_ASCII[1] and b >= PRINTABLE_ASCII[0]]
    pool = printable or [r for lo, hi in ranges for r in _without_surrogates(lo, hi)]
    if not pool:
        raise EcmaPatternError("a character class that matches no character")
    lo, hi = rng.choices(pool, weights=[hi - lo + 1 for lo, hi in pool])[0]
    return chr(rng.randint(lo, hi))


def _without_surrogates(lo: int, hi: int) -> list[tuple[int, int]]:
    parts = [(lo, min(hi, SURROGATES[0] - 1)), (max(lo, SURROGATES[1] + 1), hi)]
    return [(a, b) for a, b in parts if a <= b]
