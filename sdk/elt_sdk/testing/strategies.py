"""Hypothesis strategies from a dataset's JSON Schema, for any schema the SDK accepts.

``valid_records`` draws records the schema accepts, honouring every keyword the validator
enforces at any depth: ``type`` (unions and null included), ``enum``/``const``, ``required``,
``additionalProperties``, nested ``properties``, ``items`` with ``minItems``/``maxItems``/
``uniqueItems``, ``minLength``/``maxLength``, ``pattern`` with ECMA-262's meaning (``\\d`` is
``[0-9]``), the formats the SDK enforces, inclusive and exclusive bounds, and ``multipleOf``
exactly (``0.07`` for ``multipleOf: 0.01``, as JSON writes it). Local ``$ref``\\ s are followed.
Keywords drawn by construction are listed in ``CONSTRUCTED``; any other (``anyOf``, ``oneOf``,
``allOf``, ``not``, ``minProperties``...) is honoured by filtering candidates through a validator
of that fragment, slower but exact. Every valid record serializes as strict JSON (no NaN, no lone
surrogates).

``invalid_records`` breaks one constraint of a valid record, at any depth (``elt_sdk.mutations``
lists how); ``invalid_lines`` adds lines no JSON parser accepts; ``lines`` mixes them all.

**Overriding one field.** Where a field needs values the schema cannot say (a check digit, a code
list kept elsewhere), give its strategy by path: property names joined by dots, ``[]`` for the
items of an array::

    valid_records(ds, field_strategies={"customs.hs_code": st.from_regex(r"\\A[0-9]{6}\\Z"),
                                        "lines[].sku": st.sampled_from(SKUS)})

The override draws the field's whole value (include ``st.none()`` if you want nulls); whether an
optional field is present is still the schema's call. ``DatasetSuite.field_strategies`` passes
the same mapping to every standard test. A path that names no field is an error.
"""
from __future__ import annotations

import json
import math
import random
import re
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, Callable, Mapping

from hypothesis import strategies as st

from elt_sdk import ecma
from elt_sdk.dataset import Dataset
from elt_sdk.formats import GZIP_MAGIC
from elt_sdk.mutations import (Break, allowed_types, apply, breaks, canonical, in_order, is_multiple,
                               pattern_matcher, resolve, type_of)

__all__ = ["CONSTRUCTED", "FORMATS", "FieldStrategies", "StrategyError", "broken_records", "date_times",
           "invalid_lines", "invalid_records", "lines", "valid_records", "value_strategy"]

FieldStrategies = Mapping[str, st.SearchStrategy]
"""Field path (``"customs.hs_code"``, ``"lines[].sku"``) -> the strategy drawing its value."""

INT64 = (-(2**63), 2**63 - 1)
"""Silver stores integers as int64: valid records stay inside it (beyond it is refused)."""
SAFE_INT = 2**53
"""Integers in ``number`` fields stay where a float64 holds them exactly."""
UTF8 = st.characters(codec="utf-8")
"""Any character that encodes as UTF-8: every code point but lone surrogates."""

ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "$id", "$schema", "readOnly",
                         "writeOnly", "deprecated", "contentMediaType", "contentEncoding", "definitions", "$defs"})
CONSTRUCTED = frozenset({"type", "enum", "const", "properties", "required", "additionalProperties", "items",
                         "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "format",
                         "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
"""Keywords the strategies draw by construction; others are honoured by filtering."""


class StrategyError(ValueError):
    """A schema fragment no strategy can draw from; the message names the field and how to
    override its strategy."""


_TZ = st.sampled_from([timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)),
                       timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])


@st.composite
def date_times(draw: st.DrawFn) -> str:
    """RFC 3339 timestamps in the forms real feeds send: Z or offsets, 0-9 fraction digits."""
    moment = draw(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=_TZ))
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    digits = draw(st.sampled_from([0, 0, 3, 6, 9]))
    frac = "" if not digits else "." + f"{moment.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    off = moment.utcoffset()
    if off == timedelta(0) and draw(st.booleans()):
        zone = draw(st.sampled_from(["Z", "z"]))
    else:
        minutes = int(off.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return base + frac + zone


def _regex(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?"
FORMATS: dict[str, st.SearchStrategy[str]] = {
    "date-time": date_times(),
    "date": st.dates().map(lambda d: d.isoformat()),
    "time": _regex(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])"),
    "email": _regex(rf"[a-z0-9]{{1,12}}(?:\.[a-z0-9]{{1,8}})?@{_LABEL}\.[a-z]{{2,6}}"),
    "hostname": _regex(rf"{_LABEL}(?:\.{_LABEL}){{0,3}}"),
    "ipv4": st.ip_addresses(v=4).map(str),
    "ipv6": st.ip_addresses(v=6).map(str),
    "uri": _regex(rf"https?://{_LABEL}\.[a-z]{{2,6}}(?:/[a-z0-9._~-]{{0,10}}){{0,3}}"),
    "uri-reference": _regex(rf"(?:https?://{_LABEL}\.[a-z]{{2,6}})?(?:/[a-z0-9._~-]{{0,10}}){{0,3}}"),
    "json-pointer": _regex(r"(?:/(?:[a-z0-9]|~[01]){0,6}){0,3}"),
    "relative-json-pointer": _regex(r"(?:0|[1-9][0-9]{0,2})(?:#|(?:/(?:[a-z0-9]|~[01]){0,6}){0,3})"),
    "uri-template": _regex(r"[a-z/]{0,10}(?:\{[a-z]{1,5}\})?"),
    "regex": st.sampled_from(["^[a-z]+$", "[0-9]{3}", ".*", "^(?:ab|cd)?e$"]),
    "uuid": st.uuids().map(str),
}
FORMATS.update({"idn-email": FORMATS["email"], "iri": FORMATS["uri"], "iri-reference": FORMATS["uri-reference"],
                "idn-hostname": _regex(rf"{_LABEL}\.[a-z]{{2,6}}")})
"""Valid values of each format the SDK enforces (others are annotations: any string)."""

_JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-SAFE_INT, SAFE_INT),
                          st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
_JSON_VALUES = st.recursive(_JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                            max_leaves=6)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Builder:
    """Strategies for the fragments of one root schema, with per-field overrides."""

    def __init__(self, root: Mapping[str, Any], overrides: FieldStrategies | None):
        self.root = root
        self.overrides = dict(overrides or {})
        self.used: set[str] = set()
        self.fields: set[str] = set()

    def record(self) -> st.SearchStrategy[dict[str, Any]]:
        strategy = self.value(self.root, "")
        unknown = sorted(set(self.overrides) - self.used)
        if unknown:
            raise StrategyError(f"field_strategies names no field of the schema: {', '.join(unknown)}; "
                                f"fields: {', '.join(sorted(self.fields))}")
        return strategy

    def fail(self, path: str, why: str) -> StrategyError:
        return StrategyError(f"${'.' + path if path and not path.startswith('[') else path}: {why}; "
                             f"give this field a strategy: field_strategies={{{path!r}: ...}}")

    def value(self, prop: Any, path: str) -> st.SearchStrategy:
        if path:
            self.fields.add(path)
        if path in self.overrides:
            self.used.add(path)
            return self.overrides[path]
        try:
            prop = resolve(self.root, prop)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
        if not isinstance(prop, Mapping):
            raise self.fail(path, f"a schema must be an object, got {prop!r}")
        others = set(prop) - ANNOTATIONS - CONSTRUCTED
        if others:
            return self._filtered(prop, path, others)
        return self._constructed(prop, path)

    def _constructed(self, prop: Mapping[str, Any], path: str) -> st.SearchStrategy:
        types = allowed_types(prop)
        if "const" in prop:
            return st.just(prop["const"])
        if "enum" in prop:
            values = [v for v in prop["enum"] if types is None or type_of(v) in types]
            if not values:
                raise self.fail(path, "no enum value has the declared type")
            return st.sampled_from(values)
        if types is None:  # no type: any JSON value the other keywords allow
            kinds = ["null", "boolean", "integer", "number", "string", "array", "object"]
        else:
            kinds = sorted(types - ({"integer"} if "number" in types else set()))
        return st.one_of([self._typed(kind, prop, path) for kind in kinds])

    def _typed(self, kind: str, prop: Mapping[str, Any], path: str) -> st.SearchStrategy:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            return self._integers(prop, path)
        if kind == "number":
            return self._numbers(prop, path)
        if kind == "string":
            return self._strings(prop, path)
        if kind == "array":
            return self._arrays(prop, path)
        if kind == "object":
            return self._objects(prop, path)
        raise self.fail(path, f"unknown type {kind!r}")

    # -- numbers ---------------------------------------------------------------------------

    @staticmethod
    def _bounds(prop: Mapping[str, Any]) -> tuple[Fraction | None, bool, Fraction | None, bool]:
        """(low, low exclusive, high, high exclusive), exactly; draft-04's boolean exclusives too."""
        lo = hi = None
        lo_ex = hi_ex = False
        for key, ex_key, sign in (("minimum", "exclusiveMinimum", -1), ("maximum", "exclusiveMaximum", 1)):
            bound, exclusive = prop.get(key), prop.get(ex_key)
            candidates = []
            if _number(bound):
                candidates.append((_exact(bound), exclusive is True))
            if _number(exclusive):
                candidates.append((_exact(exclusive), True))
            if candidates:  # the tighter bound wins; at a tie, the exclusive one
                pick = max(candidates, key=lambda c: (c[0], c[1])) if sign < 0 else \
                    min(candidates, key=lambda c: (c[0], not c[1]))
                if sign < 0:
                    lo, lo_ex = pick
                else:
                    hi, hi_ex = pick
        return lo, lo_ex, hi, hi_ex

    def _integers(self, prop: Mapping[str, Any], path: str) -> st.SearchStrategy[int]:
        lo, lo_ex, hi, hi_ex = self._bounds(prop)
        step = _exact(prop["multipleOf"]).numerator if _number(prop.get("multipleOf")) else 1  # integers that are k*p/q
        low, high = _int_range(lo, lo_ex, hi, hi_ex, INT64)
        kmin, kmax = -((-low) // step), high // step
        if kmin > kmax:
            raise self.fail(path, "no integer in int64 satisfies its bounds and multipleOf")
        return st.integers(kmin, kmax).map(lambda k: k * step)

    def _numbers(self, prop: Mapping[str, Any], path: str) -> st.SearchStrategy[float | int]:
        lo, lo_ex, hi, hi_ex = self._bounds(prop)
        if _number(prop.get("multipleOf")):
            of = prop["multipleOf"]
            step = _exact(of)
            limit = Fraction(10**12)  # k * step stays a short decimal: repr(float) is exact
            low = max(lo, -limit) if lo is not None else -limit
            high = min(hi, limit) if hi is not None else limit
            kmin, kmax = math.ceil(low / step), math.floor(high / step)
            if lo_ex and kmin * step == lo:
                kmin += 1
            if hi_ex and kmax * step == hi:
                kmax -= 1
            if kmin > kmax:
                raise self.fail(path, "no number satisfies its bounds and multipleOf")
            return st.integers(kmin, kmax).map(lambda k: float(k * step)).filter(lambda v: is_multiple(v, of))
        floats = st.floats(min_value=None if lo is None else float(lo), max_value=None if hi is None else float(hi),
                           exclude_min=lo_ex, exclude_max=hi_ex, allow_nan=False, allow_infinity=False)
        if lo is not None and float(lo) != lo or hi is not None and float(hi) != hi:  # bounds floats cannot hold
            floats = floats.filter(lambda v: _inside(_exact(v), lo, lo_ex, hi, hi_ex))
        low, high = _int_range(lo, lo_ex, hi, hi_ex, (-SAFE_INT, SAFE_INT))
        if low > high:
            return floats
        return st.one_of(floats, st.integers(low, high))  # feeds write 3, not 3.0

    # -- strings ---------------------------------------------------------------------------

    def _strings(self, prop: Mapping[str, Any], path: str) -> st.SearchStrategy[str]:
        lo, hi = prop.get("minLength", 0), prop.get("maxLength")
        fmt, pattern = prop.get("format"), prop.get("pattern")
        if hi is not None and hi < lo:
            raise self.fail(path, f"maxLength {hi} < minLength {lo}")
        if fmt in FORMATS:
            base = FORMATS[fmt]
        elif pattern is not None:
            base = self._pattern(pattern, path)
        else:
            return st.text(UTF8, min_size=lo, max_size=hi if hi is not None else lo + 24)
        checks: list[Callable[[str], bool]] = []
        if pattern is not None:
            matcher = pattern_matcher(pattern)
            checks.append(lambda s: matcher.search(s) is not None)
        if lo or hi is not None:
            checks.append(lambda s: lo <= len(s) and (hi is None or len(s) <= hi))
        return base.filter(lambda s: all(c(s) for c in checks)) if checks else base

    def _pattern(self, pattern: str, path: str) -> st.SearchStrategy[str]:
        """Strings ECMA-262's ``pattern`` matches (anywhere in them, as JSON Schema says)."""
        try:
            translated = ecma.to_python(pattern)
        except ecma.EcmaPatternError as exc:
            raise self.fail(path, f"pattern {pattern!r} is not ECMA-262: {exc}") from None
        source: Any = translated
        if "(?<" in translated and "(?<" not in pattern:
            # \b became look-behinds, which hypothesis cannot draw from: draw from the pattern read
            # with ASCII classes instead (ECMA's \b is ASCII), and keep what ECMA's meaning matches
            try:
                source = re.compile(pattern, re.ASCII)
            except re.error:
                pass
        try:
            return st.one_of(st.from_regex(source, fullmatch=True, alphabet=UTF8),
                             st.from_regex(source, fullmatch=False, alphabet=UTF8))
        except Exception as exc:  # hypothesis refuses some constructs
            raise self.fail(path, f"cannot draw strings for pattern {pattern!r}: {exc}") from None

    # -- arrays and objects ----------------------------------------------------------------

    def _arrays(self, prop: Mapping[str, Any], path: str) -> st.SearchStrategy[list]:
        items = prop.get("items", {})
        if not isinstance(items, (Mapping, bool)):
            return self._filtered(prop, path, {"items"})
        item = self.value(items, f"{path}[]")
        lo = prop.get("minItems", 0)
        hi = prop.get("maxItems", lo + 4)
        if hi < lo:
            raise self.fail(path, f"maxItems {hi} < minItems {lo}")
        return st.lists(item, min_size=lo, max_size=hi, unique_by=canonical if prop.get("uniqueItems") else None)

    def _objects(self, prop: Mapping[str, Any], path: str) -> st.SearchStrategy[dict]:
        props = prop.get("properties", {})
        required = list(prop.get("required", ()))
        extra = prop.get("additionalProperties", True)
        extra_value = _JSON_VALUES if extra is True or extra == {} else None
        fixed, optional = {}, {}
        for name, sub in props.items():
            (fixed if name in required else optional)[name] = self.value(sub, _child(path, name))
        for name in required:
            if name not in props:  # required but typed only by additionalProperties
                if extra is False:
                    raise self.fail(_child(path, name), "required, but additionalProperties is false")
                fixed[name] = extra_value if extra_value is not None else self.value(extra, _child(path, name))
        base = st.fixed_dictionaries(fixed, optional=optional)
        if extra is False:
            return base
        values = extra_value if extra_value is not None else self.value(extra, _child(path, "*"))
        names = st.text(UTF8, min_size=1, max_size=10).filter(lambda n: n not in props and n not in required)
        more = st.dictionaries(names, values, max_size=3)
        return st.one_of(base, st.builds(lambda r, e: {**e, **r}, base, more))  # feeds carry fields no schema names

    # -- everything else: candidates through a validator of the fragment -------------------

    def _filtered(self, prop: Mapping[str, Any], path: str, keywords: set[str]) -> st.SearchStrategy:
        core = {k: v for k, v in prop.items() if k in CONSTRUCTED or k in ANNOTATIONS}
        if isinstance(prop.get("items"), list):
            core.pop("items")
        if "anyOf" in prop or "oneOf" in prop:
            branches = [resolve(self.root, b) for b in prop.get("anyOf", prop.get("oneOf", []))]
            candidates = st.one_of([self._constructed_or_filtered({**core, **b}, path) for b in branches])
        elif "allOf" in prop:
            merged = dict(core)
            for b in prop["allOf"]:
                merged.update(resolve(self.root, b))
            merged.pop("allOf", None)
            candidates = self._constructed_or_filtered(merged, path)
        else:
            candidates = self._constructed(core, path)
        check = self._validator(prop, path)
        return candidates.filter(check)

    def _constructed_or_filtered(self, prop: Mapping[str, Any], path: str) -> st.SearchStrategy:
        others = set(prop) - ANNOTATIONS - CONSTRUCTED
        return self._filtered(prop, path, others) if others else self._constructed(prop, path)

    def _validator(self, prop: Mapping[str, Any], path: str) -> Callable[[Any], bool]:
        import fastjsonschema

        fragment = dict(_ecma_schema(prop))
        for key in ("definitions", "$defs"):
            if key in self.root and key not in fragment:
                fragment[key] = _ecma_schema(self.root[key])
        try:
            validate = fastjsonschema.compile(fragment, use_default=False)
        except Exception as exc:
            raise self.fail(path, f"cannot check {sorted(set(prop) - CONSTRUCTED - ANNOTATIONS)}: {exc}") from None

        def ok(value: Any) -> bool:
            try:
                validate(value)
            except fastjsonschema.JsonSchemaValueException:
                return False
            return True

        return ok


def _ecma_schema(node: Any) -> Any:
    """A copy of a schema fragment with every ``pattern`` (and ``patternProperties`` key) in
    Python ``re`` syntax with ECMA-262's meaning, for fastjsonschema."""
    if isinstance(node, list):
        return [_ecma_schema(n) for n in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str):
            out[key] = ecma.to_python(value)
        elif key == "patternProperties" and isinstance(value, Mapping):
            out[key] = {ecma.to_python(p): _ecma_schema(s) for p, s in value.items()}
        elif key in ("properties", "definitions", "$defs", "dependencies") and isinstance(value, Mapping):
            out[key] = {n: _ecma_schema(s) for n, s in value.items()}
        elif key in ("enum", "const", "default", "examples"):
            out[key] = value
        else:
            out[key] = _ecma_schema(value)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _exact(value: int | float) -> Fraction:
    return Fraction(value) if isinstance(value, int) else Fraction(repr(value))


def _int_range(lo: Fraction | None, lo_ex: bool, hi: Fraction | None, hi_ex: bool,
               limits: tuple[int, int]) -> tuple[int, int]:
    """The smallest and largest integers inside the bounds and ``limits``."""
    low = limits[0] if lo is None else max(limits[0], math.floor(lo) + 1 if lo_ex or lo != math.floor(lo) else int(lo))
    high = limits[1] if hi is None else min(limits[1], math.ceil(hi) - 1 if hi_ex or hi != math.ceil(hi) else int(hi))
    return low, high


def _inside(v: Fraction, lo: Fraction | None, lo_ex: bool, hi: Fraction | None, hi_ex: bool) -> bool:
    return (lo is None or (v > lo if lo_ex else v >= lo)) and (hi is None or (v < hi if hi_ex else v <= hi))


_CACHE: dict[tuple, tuple[Any, st.SearchStrategy]] = {}


def _key(schema: Any, overrides: FieldStrategies | None) -> tuple:
    return (id(schema),) + tuple(sorted((k, id(v)) for k, v in (overrides or {}).items()))


def value_strategy(prop: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> st.SearchStrategy:
    """Values one property's schema accepts (``$ref``\\ s resolved against ``root``)."""
    return _Builder(root if root is not None else prop, None).value(prop, "")


def valid_records(dataset: Dataset, field_strategies: FieldStrategies | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Records ``dataset.json_schema`` accepts, drawn field by field; where the schema allows
    fields it does not name, some records (and nested objects) carry a few, of any JSON type."""
    key = _key(dataset.json_schema, field_strategies)
    cached = _CACHE.get(key)
    if cached is None or cached[0] is not dataset.json_schema:
        cached = _CACHE[key] = (dataset.json_schema, _Builder(dataset.json_schema, field_strategies).record())
    return cached[1]


@st.composite
def broken_records(draw: st.DrawFn, dataset: Dataset,
                   field_strategies: FieldStrategies | None = None) -> tuple[dict[str, Any], Break]:
    """A valid record broken in one way the schema must refuse, and the break: which constraint
    (``brk.kind``), where (``brk.where``, a JSON path). Every constraint at every depth is a
    candidate: a kind of break is drawn uniformly, then a place (``elt_sdk.mutations.in_order``)."""
    record = draw(valid_records(dataset, field_strategies), label="valid record")
    schema = dataset.json_schema
    candidates = breaks(schema, record)
    if not candidates:
        raise StrategyError(f"{dataset.name}: the schema refuses nothing a record could break")
    # choices seeded by the record as well as a drawn number: hypothesis draws small numbers far
    # more often than large ones, which would make a few choices most of them
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = random.Random(f"{seed}:{json.dumps(record, sort_keys=True, default=str)}")
    for brk in in_order(candidates, rng):
        broken = apply(schema, record, brk, rng)
        if broken is not None:
            return broken, brk
    raise StrategyError(f"{dataset.name}: no constraint can be broken in {record!r}")  # pragma: no cover - event_time is required


def invalid_records(dataset: Dataset, field_strategies: FieldStrategies | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """A valid record mutated in one way the schema must refuse, at any depth (see
    ``broken_records`` for the break itself)."""
    return broken_records(dataset, field_strategies).map(lambda pair: pair[0])


@st.composite
def invalid_lines(draw: st.DrawFn, dataset: Dataset, field_strategies: FieldStrategies | None = None) -> bytes:
    """Lines no strict JSON parser accepts: truncated objects, non-UTF-8 bytes, NaN, garbage."""
    line = json.dumps(draw(valid_records(dataset, field_strategies))).encode()
    how = draw(st.sampled_from(["truncated", "not_utf8", "nan", "garbage"]))
    if how == "truncated":
        return line[: draw(st.integers(1, len(line) - 1))]
    if how == "not_utf8":
        at = draw(st.integers(1, len(line) - 1))
        return line[:at] + b"\xff" + line[at:]
    if how == "nan":
        return line[:-1] + b', "extra_nan": NaN}'
    # garbage that could pass for something else is left out: JSON openers, a BOM, a digit, and
    # gzip's magic (an object that starts with it is a gzip object, and a corrupt one fails whole)
    return draw(st.binary(min_size=1, max_size=40).filter(
        lambda b: b"\n" not in b and b"\r" not in b and b.strip() and not b.strip()[:1].isdigit()
        and not b.strip().startswith((b"{", b"[", b'"', b"\xef\xbb\xbf", GZIP_MAGIC))))


def as_line(record: Any) -> bytes:
    """One JSONL line, UTF-8 as feeds send it (not ASCII-escaped)."""
    return json.dumps(record, ensure_ascii=False, allow_nan=False).encode("utf-8")


def lines(dataset: Dataset, min_size: int = 1, max_size: int = 30,
          field_strategies: FieldStrategies | None = None) -> st.SearchStrategy[list[bytes]]:
    """A mix of valid records, invalid records and malformed lines, as JSONL lines."""
    valid = valid_records(dataset, field_strategies).map(as_line)
    one = st.one_of(valid, valid, invalid_records(dataset, field_strategies).map(as_line),
                    invalid_lines(dataset, field_strategies))
    return st.lists(one, min_size=min_size, max_size=max_size)
