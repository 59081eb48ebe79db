"""Realistic fake values for plugins' ``elt_fake_records`` (public API: ``from elt_sdk import event_time``),
and the schema-driven fake records the SDK's default hook returns: drawn from the JSON Schema
(types, nullable unions, ``enum``/``const``, bounds, ``multipleOf``, lengths, ``pattern``, the
formats the validator checks, items, ``$ref``, ``anyOf``/``oneOf``/``allOf``), then checked by the
dataset's validator, so ``gen`` and ``bench --dataset`` never count a record as valid that is not."""
from __future__ import annotations

import copy
import math
import random
import string
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Mapping

from elt_sdk import ecma
from elt_sdk.errors import FakeRecordError
from elt_sdk.schema import Resolver, SchemaError, json_types

if TYPE_CHECKING:
    from elt_sdk.dataset import Dataset

EPOCH_END = datetime(2026, 1, 1, tzinfo=timezone.utc)
"""Fake event times fall in the days before this instant, so ``gen --seed`` is reproducible."""

CITIES = (
    "New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Seattle", "Denver", "Atlanta",
    "Miami", "Boston", "Dallas", "San Francisco", "Toronto", "Mexico City", "London", "Rotterdam",
    "Hamburg", "Shanghai", "Shenzhen", "Singapore", "Tokyo", "Sydney", "Dubai", "Sao Paulo",
)
"""A vocabulary for plugins' fake records (origins, destinations, scan locations)."""


def event_time(rng: random.Random, days: int = 7, end: datetime = EPOCH_END) -> str:
    """An ISO-8601 UTC timestamp within ``days`` before ``end``."""
    moment = end - timedelta(seconds=rng.randrange(days * 86400))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


STRING_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "date-time": lambda rng: event_time(rng),
    "date": lambda rng: event_time(rng)[:10],
    "time": lambda rng: event_time(rng)[11:],
    "email": lambda rng: f"{_word(rng)}.{_word(rng)}@example.com",
    "idn-email": lambda rng: f"{_word(rng)}@example.com",
    "hostname": lambda rng: f"{_word(rng)}.example.com",
    "idn-hostname": lambda rng: f"{_word(rng)}.example.com",
    "ipv4": lambda rng: ".".join(str(rng.randrange(1, 255)) for _ in range(4)),
    "ipv6": lambda rng: ":".join(f"{rng.randrange(65536):x}" for _ in range(8)),
    "uri": lambda rng: f"https://example.com/{_word(rng)}/{rng.randrange(10**6)}",
    "iri": lambda rng: f"https://example.com/{_word(rng)}",
    "uri-reference": lambda rng: f"/{_word(rng)}/{rng.randrange(10**6)}",
    "iri-reference": lambda rng: f"/{_word(rng)}",
    "uri-template": lambda rng: f"https://example.com/{{{_word(rng)}}}",
    "json-pointer": lambda rng: f"/{_word(rng)}/{rng.randrange(10)}",
    "relative-json-pointer": lambda rng: f"{rng.randrange(3)}/{_word(rng)}",
    "regex": lambda rng: f"^{_word(rng)}[0-9]+$",
    "uuid": lambda rng: _uuid(rng),
}
"""A realistic value for each string format the SDK's validator checks (``validator.FORMATS``)."""
ATTEMPTS = 50
"""Draws of one record before the default hook gives up on a schema it cannot satisfy."""
MAX_DEPTH = 6
"""Nesting past which objects get only their required properties (a recursive ``$ref`` ends)."""


_RESOLVERS: dict[int, tuple[Any, Resolver]] = {}
"""A Resolver per schema document drawn from (it indexes the whole document once)."""
MAX_RESOLVERS = 64
"""Documents held at once: a caller drawing from a new schema dict each time must not grow it."""


def _resolver(root: Any) -> Resolver:
    held = _RESOLVERS.get(id(root))
    if held is None or held[0] is not root:
        if len(_RESOLVERS) >= MAX_RESOLVERS:
            _RESOLVERS.clear()
        held = _RESOLVERS[id(root)] = (root, Resolver(root))
    return held[1]


def _uuid(rng: random.Random) -> str:
    import uuid  # not at import: every function's cold start loads this module (the default hook), and uuid ~3 ms

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _word(rng: random.Random, lo: int = 4, hi: int = 10) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(lo, hi)))


def _number(prop: Mapping[str, Any], rng: random.Random, integer: bool) -> int | float:
    """A number within the bounds (exclusive ones kept out), a multiple of ``multipleOf`` when
    there is one (built as k * multipleOf in decimal, so ``0.01`` gives 0.3, not
    0.30000000000000004)."""
    def bound(inclusive: str, exclusive: str, pick: Callable[..., Any]) -> tuple[Fraction | None, bool]:
        found = [(Fraction(str(prop[key])), key == exclusive) for key in (inclusive, exclusive)
                 if isinstance(prop.get(key), (int, float)) and not isinstance(prop.get(key), bool)]
        return pick(found, key=lambda b: (b[0], b[1] if pick is max else not b[1])) if found else (None, False)

    (low, open_low), (high, open_high) = bound("minimum", "exclusiveMinimum", max), bound("maximum", "exclusiveMaximum", min)
    if low is None:
        low, open_low = (high - 1000 if high is not None else Fraction(0)), False
    if high is None:
        high, open_high = low + 1000, False
    step = prop.get("multipleOf")
    unit = Fraction(str(step)) if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0 else \
        Fraction(1) if integer else None
    if unit is None:
        value = round(rng.uniform(float(low), float(high)), 2)
        if not (low < value < high or value == low and not open_low or value == high and not open_high):
            value = float((low + high) / 2)  # a range too narrow for two decimals
        return value
    if integer and unit.denominator != 1:
        unit = unit * unit.denominator  # a multiple that is also an integer
    first = math.floor(low / unit) + 1 if open_low else math.ceil(low / unit)
    last = math.ceil(high / unit) - 1 if open_high else math.floor(high / unit)
    if first > last:
        return float(low)  # nothing fits: the validator says so
    value = rng.randint(first, last) * unit
    if integer or value.denominator == 1 and isinstance(step, int):
        return int(value)
    return float(Decimal(value.numerator) / Decimal(value.denominator))


def _string(prop: Mapping[str, Any], rng: random.Random) -> str:
    fmt = prop.get("format")
    if isinstance(fmt, str) and fmt in STRING_FORMATS:
        return STRING_FORMATS[fmt](rng)
    pattern = prop.get("pattern")
    if isinstance(pattern, str):
        return _matching(pattern, rng)
    lo = int(prop.get("minLength", 0))
    hi = int(prop.get("maxLength", max(lo, 4) + 12))
    lo = max(lo, min(4, hi))
    return _word(rng, lo, max(lo, min(hi, lo + 12)))


def _matching(pattern: str, rng: random.Random) -> str:
    """A string that matches ``pattern`` (ECMA-262, as JSON Schema means it); look-arounds and
    word boundaries are not honoured, the hook's validation then draws again."""
    try:
        return ecma.sample(pattern, rng)
    except ecma.EcmaPatternError:  # the validator refuses such a schema at load anyway
        return _word(rng)


def fake_value(prop: Any, rng: random.Random, name: str = "", *, root: Any = None, depth: int = 0) -> Any:
    """A value ``prop`` (a JSON Schema) allows, mostly; the default hook validates each record
    and draws again where it does not. ``root``: the whole schema, for ``$ref``. Past
    ``MAX_DEPTH`` levels an object gets only its required properties and an array its fewest
    items, so a recursive ``$ref`` ends."""
    if prop is True or not isinstance(prop, Mapping):
        return _word(rng)
    prop = _resolved(prop, root)
    if "const" in prop:
        return prop["const"]
    if "enum" in prop:
        return rng.choice(prop["enum"])
    for keyword in ("anyOf", "oneOf"):
        if isinstance(prop.get(keyword), list) and prop[keyword]:
            rest = {k: v for k, v in prop.items() if k != keyword}
            branch = _resolved(rng.choice(prop[keyword]), root)
            return fake_value({**rest, **branch} if isinstance(branch, Mapping) else branch, rng, name, root=root,
                              depth=depth)
    if isinstance(prop.get("allOf"), list):
        return fake_value(_merged(prop, root), rng, name, root=root, depth=depth)
    try:
        types, nullable = json_types(prop)
    except SchemaError:  # no type: a string, unless the keywords say object or array
        types, nullable = ["object" if "properties" in prop else "array" if "items" in prop else "string"], False
    if nullable and (not types or rng.random() < 0.1):
        return None
    kind = rng.choice(types) if types else "string"
    if kind == "string":
        return _string(prop, rng)
    if kind in ("integer", "number"):
        return _number(prop, rng, kind == "integer")
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        lo = int(prop.get("minItems", 0))
        hi = int(prop.get("maxItems", lo + 3))
        count = lo if depth >= MAX_DEPTH else rng.randint(lo, max(lo, min(hi, lo + 3)))
        items = prop.get("items", True)
        if isinstance(items, list):  # draft-07 tuple items: one value per position
            return [fake_value(p, rng, root=root, depth=depth + 1) for p in items[:max(lo, min(hi, len(items)))]]
        return [fake_value(items, rng, root=root, depth=depth + 1) for _ in range(count)]
    if kind == "object":
        return fake_record(prop, rng, root=root, depth=depth)
    return None


def _resolved(prop: Any, root: Any) -> Any:
    """``prop`` with its ``$ref`` followed (draft-07: the ref's siblings are ignored)."""
    while isinstance(prop, Mapping) and "$ref" in prop and root is not None:
        prop, _ = _resolver(root).resolve(prop["$ref"])
    return prop


def _merged(prop: Mapping[str, Any], root: Any) -> dict[str, Any]:
    """``allOf`` as one schema: each part's ``$ref`` followed, ``properties`` and ``required``
    united, other keywords from the last part that has them (the validator then judges)."""
    merged: dict[str, Any] = {k: v for k, v in prop.items() if k != "allOf"}
    for part in prop["allOf"]:
        part = _resolved(part, root)
        if not isinstance(part, Mapping):
            continue
        part = _merged(part, root) if isinstance(part.get("allOf"), list) else part
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged[key] = value
    return merged


def fake_record(schema: Mapping[str, Any], rng: random.Random, *, root: Any = None, depth: int = 0) -> dict[str, Any]:
    """An object with every required property and most optional ones (only the required ones
    past ``MAX_DEPTH``), values from ``fake_value``."""
    root = schema if root is None else root
    schema = _resolved(schema, root)
    if isinstance(schema.get("allOf"), list):
        schema = _merged(schema, root)
    props = schema.get("properties", {})
    required = set(schema.get("required", ()))
    deep = depth >= MAX_DEPTH
    return {k: fake_value(p, rng, k, root=root, depth=depth + 1) for k, p in props.items()
            if k in required or not deep and rng.random() < 0.8}


DRAW_ERRORS = (ValueError, TypeError, KeyError, IndexError, ArithmeticError, RecursionError)
"""What a draw may raise on a schema it cannot serve (an empty enum, a bound that is no
number): that dataset's FakeRecordError, not a traceback."""


def valid_fake_records(dataset: "Dataset", rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` schema-driven records, each one the dataset's validator accepts (drawn again
    where a draw breaks a keyword the drawing does not honour); raises FakeRecordError, naming
    the dataset and the error, when a schema defeats ``ATTEMPTS`` draws of one record. The
    validator may fill in defaults, so it checks a copy: a record keeps its absent fields."""
    import fastjsonschema

    schema = dataset.json_schema
    out = []
    for _ in range(count):
        error = None
        for _ in range(ATTEMPTS):
            try:
                record = fake_record(schema, rng)
            except DRAW_ERRORS as exc:
                raise FakeRecordError(f"dataset {dataset.name!r}: the SDK's schema-driven fake records cannot draw "
                                      f"from its schema ({type(exc).__name__}: {exc}); implement elt_fake_records "
                                      "in its plugin") from None
            if dataset.discriminator in schema.get("properties", {}):
                record[dataset.discriminator] = dataset.route_value
            try:
                dataset.validator(copy.deepcopy(record))
            except fastjsonschema.JsonSchemaValueException as exc:
                error = exc.message
                continue
            out.append(record)
            break
        else:
            raise FakeRecordError(f"dataset {dataset.name!r}: the SDK's schema-driven fake records cannot satisfy "
                                  f"its schema ({error}); implement elt_fake_records in its plugin")
    return out
