"""JSON Schema ``pattern`` as ECMA-262 means it, on Python's ``re`` and on RE2.

JSON Schema specifies ECMA-262 regular expressions; Python's ``re`` (what fastjsonschema compiles)
and RE2 (Arrow's regex kernels) differ from it: Python's ``\\d`` matches every Unicode digit,
``\\w`` every Unicode letter, ``$`` matches before a final newline, ``.`` matches ``\\r``.
``to_python`` and ``to_re2`` rewrite an ECMA pattern into each dialect with ECMA's meaning
(``\\d`` is ``[0-9]``, ``\\w`` is ``[A-Za-z0-9_]``, ``\\s`` is ECMA's white space and line
terminators, ``$`` is the end of input, ``.`` excludes line terminators). Syntax that ECMA does
not have, or that one dialect cannot express, raises ``EcmaPatternError`` with the reason, so a
schema using it is refused at load instead of being matched with another meaning.
"""
from __future__ import annotations

import re

__all__ = ["EcmaPatternError", "compile_python", "to_python", "to_re2"]

# ECMA-262 WhiteSpace and LineTerminator code points (\s)
_SPACE = "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_DIGIT = "0-9"
_WORD = "A-Za-z0-9_"
_LINE_TERMINATORS = "\\n\\r\\u2028\\u2029"


class EcmaPatternError(ValueError):
    """A pattern that is not ECMA-262, or that this dialect cannot match with ECMA's meaning."""


def _translate(pattern: str, dialect: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_start = 0
    space = _SPACE if dialect == "python" else _SPACE.replace("\\u", "\\x{").replace("\\x{", "\\x{")
    if dialect == "re2":
        space = "\\t\\n\\x0b\\x0c\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}"
        terminators = "\\n\\r\\x{2028}\\x{2029}"
    else:
        terminators = _LINE_TERMINATORS
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise EcmaPatternError("pattern ends with a lone backslash")
            e = pattern[i + 1]
            i += 2
            if e in "dws":
                body = {"d": _DIGIT, "w": _WORD, "s": space}[e]
                out.append(body if in_class else f"[{body}]")
            elif e in "DWS":
                if in_class:
                    raise EcmaPatternError(f"\\{e} inside a character class is not supported")
                out.append(f"[^{ {'D': _DIGIT, 'W': _WORD, 'S': space}[e] }]".replace("{ ", "").replace(" }", ""))
            elif e == "b" and not in_class:
                out.append("(?:(?<=[A-Za-z0-9_])(?![A-Za-z0-9_])|(?<![A-Za-z0-9_])(?=[A-Za-z0-9_]))"
                           if dialect == "python" else "\\b")
            elif e == "B" and not in_class:
                out.append("(?:(?<=[A-Za-z0-9_])(?=[A-Za-z0-9_])|(?<![A-Za-z0-9_])(?![A-Za-z0-9_]))"
                           if dialect == "python" else "\\B")
            elif e in "AZzGQEpPhHvVRXKNo" and e not in "v":
                raise EcmaPatternError(f"\\{e} is not an ECMA-262 escape here")
            elif e == "u":
                hexd = pattern[i:i + 4]
                if len(hexd) == 4 and all(h in "0123456789abcdefABCDEF" for h in hexd):
                    out.append(f"\\u{hexd}" if dialect == "python" else f"\\x{{{hexd}}}")
                    i += 4
                else:
                    raise EcmaPatternError("\\u must be followed by four hex digits")
            elif e == "c":
                if i < n and pattern[i].isalpha() and pattern[i].isascii():
                    out.append("\\x%02x" % (ord(pattern[i]) % 32))
                    i += 1
                else:
                    raise EcmaPatternError("\\c must be followed by a letter")
            elif e == "k":
                m = re.match(r"<([A-Za-z_][A-Za-z0-9_]*)>", pattern[i:])
                if not m:
                    raise EcmaPatternError("\\k must name a group: \\k<name>")
                if dialect == "re2":
                    raise EcmaPatternError("back-references cannot be matched by RE2")
                out.append(f"(?P={m.group(1)})")
                i += m.end()
            elif e.isdigit() and e != "0":
                if dialect == "re2" and not in_class:
                    raise EcmaPatternError("back-references cannot be matched by RE2")
                out.append("\\" + e)
            else:
                out.append("\\" + e)
            continue
        if in_class:
            if c == "]" and i > class_start:
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            if pattern.startswith("[^]", i):
                out.append("[\\s\\S]" if dialect == "python" else "(?s:.)")
                i += 3
                continue
            if pattern.startswith("[]", i):
                out.append("(?!)" if dialect == "python" else "[^\\x00-\\x{10FFFF}]")
                i += 2
                continue
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            class_start = i
            if i < n and pattern[i] == "]":  # ']' first in a class is a literal in neither dialect for ECMA: empty
                raise EcmaPatternError("empty character class")
            continue
        if c == "(" and pattern.startswith("(?", i):
            rest = pattern[i + 2:]
            if rest.startswith(("=", "!")):
                if dialect == "re2":
                    raise EcmaPatternError("look-ahead cannot be matched by RE2")
                out.append(pattern[i:i + 3])
                i += 3
                continue
            if rest.startswith(("<=", "<!")):
                if dialect == "re2":
                    raise EcmaPatternError("look-behind cannot be matched by RE2")
                out.append(pattern[i:i + 4])
                i += 4
                continue
            if rest.startswith(":"):
                out.append("(?:")
                i += 3
                continue
            m = re.match(r"<([A-Za-z_][A-Za-z0-9_]*)>", rest)
            if m:
                out.append(f"(?P<{m.group(1)}>")
                i += 2 + m.end()
                continue
            raise EcmaPatternError(f"group syntax {pattern[i:i + 4]!r} is not ECMA-262 (inline flags and (?P...) are Python's)")
        if c == ".":
            out.append(f"[^{terminators}]")
        elif c == "$":
            out.append("\\Z" if dialect == "python" else "\\z")
        else:
            out.append(c)
        i += 1
    if in_class:
        raise EcmaPatternError("unterminated character class")
    return "".join(out)


def to_python(pattern: str) -> str:
    """``pattern`` (ECMA-262) as a Python ``re`` pattern with the same meaning."""
    translated = _translate(pattern, "python")
    try:
        re.compile(translated)
    except re.error as exc:
        raise EcmaPatternError(f"not a valid pattern: {exc}") from None
    return translated


def to_re2(pattern: str) -> str:
    """``pattern`` (ECMA-262) as an RE2 pattern with the same meaning; raises EcmaPatternError
    where RE2 cannot express it (look-around, back-references): such a pattern is decided on the
    record path only."""
    return _translate(pattern, "re2")


def compile_python(pattern: str) -> "re.Pattern[str]":
    return re.compile(to_python(pattern))
