"""How a valid record breaks its JSON Schema: every constraint, at every depth.

``elt-sdk gen --invalid-rate`` and the testing kit's ``invalid_records`` both start from a valid
record and change one thing the schema forbids, wherever it sits: a nested field missing, a value
of the wrong type inside an array of objects, too few items, a string that does not match its
``pattern`` (ECMA-262: ``\\d`` is ``[0-9]``, so Arabic-Indic digits break it), a number that is not
a ``multipleOf``, a bound crossed (an exclusive bound by its own value), an unknown ``enum`` value,
a malformed ``format``, a duplicate in ``uniqueItems``, an unknown field where
``additionalProperties`` is false. Each break is checked to make the record invalid, so a caller
can count exactly what must reach quarantine; most break nothing else.

Light on purpose (no pyarrow, no hypothesis): ``gen`` runs without the testing extra. The schema
helpers (``resolve``, ``allowed_types``) are shared with the strategies.
"""
from __future__ import annotations

import copy
import math
import random
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Iterator, Mapping, Sequence

from elt_sdk import ecma

Path = tuple  # of str (property names) and int (array positions)

JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


class SchemaWalkError(ValueError):
    """A schema the walker cannot follow (a ``$ref`` outside the document, a reference cycle)."""


def resolve(root: Mapping[str, Any], prop: Any) -> Mapping[str, Any]:
    """``prop`` with a local ``$ref`` (``#/definitions/x``, ``#/$defs/x``, any JSON pointer into
    ``root``) followed; draft-07 ignores a ``$ref``'s siblings. Boolean schemas become ``{}`` and
    ``{"not": {}}``."""
    seen = set()
    while True:
        if prop is True:
            return {}
        if prop is False:
            return {"not": {}}
        if not isinstance(prop, Mapping) or "$ref" not in prop:
            return prop
        ref = prop["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaWalkError(f"$ref {ref!r}: only references inside the dataset's schema (#/...) are followed")
        if ref in seen:
            raise SchemaWalkError(f"$ref {ref!r} refers to itself")
        seen.add(ref)
        node: Any = root
        for part in [p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/") if p]:
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise SchemaWalkError(f"$ref {ref!r} does not resolve in the dataset's schema") from None
        prop = node


def type_of(value: Any) -> str:
    """The JSON type of a decoded value (``2.0`` is an integer, as JSON Schema counts it)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def allowed_types(prop: Mapping[str, Any]) -> set[str] | None:
    """The JSON types ``prop`` allows (``None``: any). ``number`` allows integers; without
    ``type``, an ``enum``/``const`` allows the types of its values."""
    declared = prop.get("type")
    if declared is None:
        if "const" in prop:
            types = {type_of(prop["const"])}
        elif "enum" in prop:
            types = {type_of(v) for v in prop["enum"]}
        else:
            return None
    else:
        types = {declared} if isinstance(declared, str) else set(declared)
    if "number" in types:
        types.add("integer")
    return types


def json_equal(a: Any, b: Any) -> bool:
    """JSON Schema equality: ``1 == 1.0``, ``True != 1``, deep for arrays and objects."""
    return canonical(a) == canonical(b)


def canonical(value: Any) -> Any:
    """A hashable form of a JSON value under JSON Schema equality (``uniqueItems``, ``enum``)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", Fraction(value) if math.isfinite(value) else value)
    if isinstance(value, Mapping):
        return ("obj", frozenset((k, canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("arr", tuple(canonical(v) for v in value))
    return (type(value).__name__, value)


def is_multiple(value: int | float, of: int | float) -> bool:
    """``value`` is an integer multiple of ``of``, in exact decimal arithmetic on the numbers as
    JSON writes them (``0.07`` is a multiple of ``0.01``, though not in binary floating point)."""
    return (_exact(value) / _exact(of)).denominator == 1


def _exact(number: int | float | Fraction) -> Fraction:
    if isinstance(number, (int, Fraction)):
        return Fraction(number)
    return Fraction(repr(number))


@lru_cache(maxsize=256)
def pattern_matcher(pattern: str) -> "re.Pattern[str]":
    """``pattern`` compiled with ECMA-262's meaning (``elt_sdk.ecma``)."""
    return re.compile(ecma.to_python(pattern))


# -- formats ----------------------------------------------------------------------------------

BAD_FORMATS: dict[str, tuple[str, ...]] = {
    "date-time": ("2025-13-01T00:00:00Z", "2025-02-30T10:00:00Z", "2025-01-01T24:00:00Z",
                  "2025-01-01T10:00:00", "2025-01-01", "yesterday", "2025-01-01T10:61:00Z"),
    "date": ("2025-13-01", "2025-02-30", "20250101", "2025-1-1", "tomorrow"),
    "time": ("25:00:00", "10:60:00", "noon"),
    "email": ("no-at-sign", "@example.com", "two@@example.com"),
    "ipv4": ("256.1.1.1", "1.2.3", "a.b.c.d"),
    "ipv6": ("12345::", "1:2:3", "::g"),
    "hostname": ("-bad-.example", "has space.example", "a..b"),
    "uri": ("no scheme", "//missing-scheme"),
    "uri-reference": ("has space", "tab\there"),
    "json-pointer": ("no-leading-slash", "/a~2"),
}
"""Strings each enforced ``format`` refuses: feeds' usual mistakes (no offset, a 13th month,
February 30th, a date for a timestamp)."""


# -- wrong types ------------------------------------------------------------------------------

def wrong_type_values(prop: Mapping[str, Any], current: Any = None) -> list[Any]:
    """Values of JSON types ``prop`` does not allow, the ones feeds really send: the number as a
    string, ``true`` for a number, ``2.5`` for an integer, ``12345`` or an object for a string,
    ``"true"`` or ``1`` for a boolean, ``null`` where null is not allowed."""
    types = allowed_types(prop)
    if types is None:
        return []
    number = current if isinstance(current, (int, float)) and not isinstance(current, bool) else 12.5
    realistic = {
        "boolean": ["true", 1],
        "integer": [str(number), True, 2.5],
        "number": [str(number), True],
        "string": [12345, {"nested": "object"}],
        "array": ["not an array", {"nested": "object"}],
        "object": ["not an object", ["an", "array"]],
        "null": ["null"],
    }
    out: list[Any] = [] if "null" in types else [None]
    for kind in sorted(types):
        out.extend(realistic.get(kind, []))
    unique: list[Any] = []
    for v in out:
        if type_of(v) not in types and not any(type(v) is type(u) and v == u for u in unique):
            unique.append(v)
    return unique


# -- sites and breaks -------------------------------------------------------------------------

@dataclass(frozen=True)
class Break:
    """One way to make a record invalid: ``kind`` at ``path`` (the schema fragment there)."""

    path: Path
    kind: str
    schema: Mapping[str, Any]

    @property
    def where(self) -> str:
        """The JSON path of the broken place, e.g. ``$.customs.lines[0].hs_code``."""
        return json_path(self.path)

    @property
    def group(self) -> tuple[str, str]:
        """The place without array positions, and the kind: one constraint at one depth."""
        return (json_path(tuple("[]" if isinstance(p, int) else p for p in self.path)), self.kind)


def json_path(path: Sequence[Any]) -> str:
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("[]" if p == "[]" else f".{p}")
    return out


KINDS = ("missing_required", "unknown_field", "wrong_type", "not_in_enum", "too_short", "too_long",
         "pattern", "format", "below_minimum", "above_maximum", "not_multiple", "too_few_items",
         "too_many_items", "duplicate_items")
"""Every kind of break ``breaks`` can list."""


def breaks(root: Mapping[str, Any], record: Any) -> list[Break]:
    """Every break that applies to ``record`` (valid against ``root``): each constraint of each
    value present, at every depth, and each required field present."""
    return list(_sites(root, root, record, ()))


def _sites(root: Mapping[str, Any], prop: Any, value: Any, path: Path) -> Iterator[Break]:
    prop = resolve(root, prop)
    if not isinstance(prop, Mapping):
        return
    if path and wrong_type_values(prop, value):  # a record stays an object: lines that are not are invalid_lines' job
        yield Break(path, "wrong_type", prop)
    if value is None:
        return
    if "enum" in prop or "const" in prop:
        yield Break(path, "not_in_enum", prop)
    kind = type_of(value)
    if kind == "string":
        if prop.get("minLength", 0) > 0:
            yield Break(path, "too_short", prop)
        if "maxLength" in prop:
            yield Break(path, "too_long", prop)
        if "pattern" in prop:
            yield Break(path, "pattern", prop)
        if prop.get("format") in BAD_FORMATS:
            yield Break(path, "format", prop)
    elif kind in ("integer", "number"):
        if "minimum" in prop or _numeric(prop.get("exclusiveMinimum")):
            yield Break(path, "below_minimum", prop)
        if "maximum" in prop or _numeric(prop.get("exclusiveMaximum")):
            yield Break(path, "above_maximum", prop)
        if "multipleOf" in prop:
            yield Break(path, "not_multiple", prop)
    elif kind == "array":
        if prop.get("minItems", 0) > 0:
            yield Break(path, "too_few_items", prop)
        if "maxItems" in prop:
            yield Break(path, "too_many_items", prop)
        if prop.get("uniqueItems") and value:
            yield Break(path, "duplicate_items", prop)
        items = prop.get("items")
        if isinstance(items, (Mapping, bool)):
            for i, item in enumerate(value):
                yield from _sites(root, items, item, path + (i,))
    elif kind == "object":
        props = prop.get("properties", {})
        for name in prop.get("required", ()):
            if name in value:
                yield Break(path + (name,), "missing_required", prop)
        if prop.get("additionalProperties", True) is False:
            yield Break(path, "unknown_field", prop)
        for name, sub in props.items():
            if name in value:
                yield from _sites(root, sub, value[name], path + (name,))


def _numeric(bound: Any) -> bool:
    return isinstance(bound, (int, float)) and not isinstance(bound, bool)


def apply(root: Mapping[str, Any], record: Any, brk: Break, rng: random.Random) -> Any:
    """A copy of ``record`` broken as ``brk`` says, or ``None`` when this value cannot be broken
    that way (an integer with ``multipleOf: 1`` has no integer that is not a multiple)."""
    broken = copy.deepcopy(record)
    if brk.kind == "missing_required":
        parent = _at(broken, brk.path[:-1])
        del parent[brk.path[-1]]
        return broken
    current = _at(broken, brk.path)
    new = _BREAKERS[brk.kind](brk.schema, current, rng)
    if new is _CANNOT:
        return None
    if not brk.path:
        return new
    _at(broken, brk.path[:-1])[brk.path[-1]] = new
    return broken


def break_record(root: Mapping[str, Any], record: Any, rng: random.Random) -> tuple[Any, Break]:
    """``record`` broken in one way (see ``in_order`` for which); raises ValueError if nothing in
    the record can be broken (a schema that accepts anything)."""
    for brk in in_order(breaks(root, record), rng):
        broken = apply(root, record, brk, rng)
        if broken is not None:
            return broken, brk
    raise ValueError("no constraint of the schema can be broken in this record")


def in_order(candidates: Sequence[Break], rng: random.Random) -> list[Break]:
    """The breaks to try, first choice first: a kind of break drawn uniformly among those that
    apply (so a missing field is no likelier than a pattern mismatch, however many required
    fields there are), then a place of that kind (a field at one depth), then an array item; the
    rest follow, in case the first cannot be made."""
    by_kind: dict[str, dict[str, list[Break]]] = {}
    for b in candidates:
        by_kind.setdefault(b.kind, {}).setdefault(b.group[0], []).append(b)
    if not by_kind:
        return []
    kind = rng.choice(sorted(by_kind))
    place = rng.choice(sorted(by_kind[kind]))
    first = rng.choice(by_kind[kind][place])
    return [first] + [b for b in candidates if b is not first]


def _at(value: Any, path: Path) -> Any:
    for p in path:
        value = value[p]
    return value


_CANNOT = object()


def _wrong_type(prop: Mapping[str, Any], current: Any, rng: random.Random) -> Any:
    return rng.choice(wrong_type_values(prop, current))


def _not_in_enum(prop: Mapping[str, Any], current: Any, rng: random.Random) -> Any:
    allowed = list(prop.get("enum", [])) + ([prop["const"]] if "const" in prop else [])
    kind = type_of(current)
    if kind == "string":
        candidates = [current + "_x", current.upper() if current.upper() != current else current.lower(),
                      "not-an-allowed-value", ""]
    elif kind in ("integer", "number"):
        numbers = [v for v in allowed if isinstance(v, (int, float)) and not isinstance(v, bool)]
        top = max(numbers, default=0)
        candidates = [type(current)(top + 1) if isinstance(top, int) else top + 0.5, -1, 0]
    elif kind == "boolean":
        candidates = [not current]
    else:
        candidates = ["not-an-allowed-value"]
    rng.shuffle(candidates)
    for c in candidates + ["not-an-allowed-value", 987654321]:
        if not any(json_equal(c, a) for a in allowed):
            return c
    return _CANNOT


def _too_short(prop: Mapping[str, Any], current: str, rng: random.Random) -> Any:
    return current[: rng.randint(0, prop["minLength"] - 1)]


def _too_long(prop: Mapping[str, Any], current: str, rng: random.Random) -> Any:
    need = prop["maxLength"] + 1 + rng.choice([0, 0, 3]) - len(current)
    options = [current + (current[-1:] or "x") * need, current + "x" * need, "x" * need + current]
    pattern = prop.get("pattern")
    for option in options:  # break the length, keep the pattern where we can
        if pattern is None or _matches(pattern, option):
            return option
    return options[0]


# ECMA's \d, \w and \s are ASCII (and ECMA's white space): look-alikes outside them that Python's
# re, and many other engines, count as digits, word characters and spaces
_LOOKALIKE_DIGITS = ("\u0660", "\uff10", "\u0966")  # Arabic-Indic, full-width, Devanagari zero
_LOOKALIKE_LETTER = {"lower": "\u00e9", "upper": "\uff21", "other": "\u4e2d"}  # é, full-width A, 中


def _lookalike(text: str, rng: random.Random, classes: str = "dws") -> str:
    """``text`` with its ASCII digits (``d``), letters (``w``) and spaces (``s``) swapped for
    look-alikes outside ECMA's classes."""
    out = []
    for c in text:
        if "d" in classes and "0" <= c <= "9":
            out.append(chr(ord(rng.choice(_LOOKALIKE_DIGITS)) + int(c)))
        elif "w" in classes and "a" <= c <= "z":
            out.append(_LOOKALIKE_LETTER["lower"])
        elif "w" in classes and "A" <= c <= "Z":
            out.append(chr(ord(_LOOKALIKE_LETTER["upper"]) + ord(c) - ord("A")))
        elif "s" in classes and c == " ":
            out.append("\u0085")  # NEL: white space to Python's \s, not to ECMA's
        else:
            out.append(c)
    return "".join(out)


def _matches(pattern: str, text: str) -> bool:
    return pattern_matcher(pattern).search(text) is not None


def _pattern(prop: Mapping[str, Any], current: str, rng: random.Random) -> Any:
    pattern = prop["pattern"]
    noise = "".join(rng.choice("!#%&*+,-./:;<=>?@^~ ") for _ in range(rng.randint(1, 6)))
    lookalikes = [_lookalike(current, rng, classes) for classes in ("d", "w", "s", "dws")]
    others = [current[::-1], "", noise, "!" + current + "!", "\u4e2d\u56fd"]
    rng.shuffle(others)
    # mostly a look-alike (same length, only the characters ECMA's \d, \w or \s would take):
    # the case where engines disagree
    candidates = lookalikes + others if rng.random() < 0.7 else others + lookalikes
    for c in candidates:
        if not _matches(pattern, c):
            return c
    return _CANNOT


def _format(prop: Mapping[str, Any], current: str, rng: random.Random) -> Any:
    return rng.choice(BAD_FORMATS[prop["format"]])


def _below(prop: Mapping[str, Any], current: int | float, rng: random.Random) -> Any:
    return _cross(prop, current, rng, -1)


def _above(prop: Mapping[str, Any], current: int | float, rng: random.Random) -> Any:
    return _cross(prop, current, rng, +1)


def _cross(prop: Mapping[str, Any], current: int | float, rng: random.Random, sign: int) -> Any:
    """A number beyond the bound on the ``sign`` side (an exclusive bound's own value, or the
    nearest step past it, or further), of the current value's kind (an integer stays an integer)
    and a multiple where ``multipleOf`` asks, so only the bound is broken."""
    inclusive, exclusive = ("minimum", "exclusiveMinimum") if sign < 0 else ("maximum", "exclusiveMaximum")
    of = _exact(prop["multipleOf"]) if _numeric(prop.get("multipleOf")) else Fraction(1)
    step = Fraction(of.numerator) if isinstance(current, int) else of  # integer multiples of p/q: of p
    candidates: list[Fraction] = []
    for key in (inclusive, exclusive):
        if not _numeric(prop.get(key)):
            continue
        b = _exact(prop[key])
        if key == exclusive and (b.denominator == 1 or not isinstance(current, int)):
            candidates.append(b)
        edge = (math.floor(b / step) if sign < 0 else math.ceil(b / step)) * step
        if edge == b and key == inclusive:
            edge += sign * step
        candidates.append(edge + sign * step * rng.choice([0, 0, 1, 6, 999]))
    good = [c for c in candidates if _beyond(prop, c, sign)]
    if not good:
        return _CANNOT
    value = rng.choice(good)
    if isinstance(current, int):
        return int(value) if value.denominator == 1 else _CANNOT
    as_float = float(value)
    return as_float if math.isfinite(as_float) and _beyond(prop, _exact(as_float), sign) else _CANNOT


def _beyond(prop: Mapping[str, Any], value: Fraction, sign: int) -> bool:
    """``value`` breaks the bound(s) on the ``sign`` side."""
    if sign < 0:
        return (_numeric(prop.get("minimum")) and value < _exact(prop["minimum"])) or \
            (_numeric(prop.get("exclusiveMinimum")) and value <= _exact(prop["exclusiveMinimum"]))
    return (_numeric(prop.get("maximum")) and value > _exact(prop["maximum"])) or \
        (_numeric(prop.get("exclusiveMaximum")) and value >= _exact(prop["exclusiveMaximum"]))


def _not_multiple(prop: Mapping[str, Any], current: int | float, rng: random.Random) -> Any:
    """A neighbour of ``current`` that is not a multiple, inside the bounds where possible; an
    integer stays an integer (none exists for ``multipleOf: 1``, nor for 0.5)."""
    of = _exact(prop["multipleOf"])
    if isinstance(current, int):
        options = [Fraction(current + d) for d in (1, -1, 2, -2, 3)]
    else:
        options = [_exact(current) + d for d in (of / 2, -of / 2, of / 3)]
    rng.shuffle(options)
    values = [int(o) if isinstance(current, int) else float(o) for o in options]
    values = [v for v in values if (isinstance(v, int) or math.isfinite(v)) and not is_multiple(v, of)]
    inside = [v for v in values if not _beyond(prop, _exact(v), -1) and not _beyond(prop, _exact(v), 1)]
    return (inside or values or [_CANNOT])[0]


def _too_few(prop: Mapping[str, Any], current: list, rng: random.Random) -> Any:
    return current[: rng.randint(0, prop["minItems"] - 1)]


def _too_many(prop: Mapping[str, Any], current: list, rng: random.Random) -> Any:
    need = prop["maxItems"] + 1 - len(current)
    filler = current[-1] if current else None
    return current + [copy.deepcopy(filler) for _ in range(need)]


def _duplicate(prop: Mapping[str, Any], current: list, rng: random.Random) -> Any:
    if len(current) >= 2:
        i, j = rng.sample(range(len(current)), 2)
        out = list(current)
        out[j] = copy.deepcopy(out[i])
        return out
    return current + [copy.deepcopy(current[0])]


def _unknown_field(prop: Mapping[str, Any], current: dict, rng: random.Random) -> Any:
    names = set(prop.get("properties", {}))
    patterns = [pattern_matcher(p) for p in prop.get("patternProperties", {})]
    for name in ("unexpected_field", "extra", "x_unknown", "zz_unexpected_9"):
        if name not in names and name not in current and not any(p.search(name) for p in patterns):
            return {**current, name: rng.choice(["surprise", 1, None])}
    return _CANNOT


_BREAKERS = {
    "wrong_type": _wrong_type, "not_in_enum": _not_in_enum, "too_short": _too_short, "too_long": _too_long,
    "pattern": _pattern, "format": _format, "below_minimum": _below, "above_maximum": _above,
    "not_multiple": _not_multiple, "too_few_items": _too_few, "too_many_items": _too_many,
    "duplicate_items": _duplicate, "unknown_field": _unknown_field,
}
