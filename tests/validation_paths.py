"""Run lines through the columnar path, the record path and the real pipeline, for ad-hoc
datasets: what the path-equivalence and conformance tests compare."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from elt_sdk import Dataset, hookimpl
from elt_sdk.batch import RawBlock, SourceRef
from elt_sdk.defaults import columnar, parse, validate
from elt_sdk.plugins import Registry, load_registry
from elt_sdk.testing import reference_verdict, transform_lines

EVENT_TIME = {"type": "string", "format": "date-time"}
WHEN = "2025-03-05T10:00:00Z"


def dataset(properties: dict[str, Any], required: list[str] | None = None, name: str = "t", **kwargs: Any) -> Dataset:
    """A dataset whose records are ``{"event_time": ..., **properties}``."""
    schema = {"type": "object", "required": ["event_time", *(required or [])],
              "properties": {"event_time": EVENT_TIME, **properties}}
    for key in ("definitions", "additionalProperties"):
        if key in kwargs:
            schema[key] = kwargs.pop(key)
    ds = Dataset(name=name, json_schema=schema, **kwargs)
    ds.check()
    return ds


@dataclass
class Outcome:
    table: pa.Table
    rejects: list[tuple[int, str, list[dict[str, str]]]]  # (line index, stage, errors)
    lines: list[int]

    def verdicts(self, n: int) -> list[bool]:
        bad = {r[0] for r in self.rejects}
        return [i not in bad for i in range(n)]


def _block(lines: list[bytes]) -> RawBlock:
    return RawBlock(SourceRef("mem://x", "e"), b"\n".join(lines) + b"\n", first_lineno=0)


def _rejects(rejects: list) -> list[tuple[int, str, list[dict[str, str]]]]:
    return sorted((r.line, r.stage, r.errors) for r in rejects)


def record_path(ds: Dataset, lines: list[bytes]) -> Outcome:
    block = _block(lines)
    parsed = parse.decode_block(block)
    table, rejects, kept = validate.validate_records(ds, block, parsed.rows, parsed.records)
    return Outcome(table, _rejects(parsed.rejects + rejects), kept)


def columnar_path(ds: Dataset, lines: list[bytes]) -> Outcome:
    block = _block(lines)
    plan = columnar.plan_for(ds)
    assert plan is not None, columnar.why_no_plan(ds)
    parsed = plan.parse(block, parse.decode_rows)
    parsed._settle()
    if parsed._table is not None:
        plan.typed(parsed._table, plan.accept(parsed._table))  # raises where the vector checks have a gap
    validated = validate.elt_validate(ds, parsed)
    return Outcome(validated.table, _rejects(parsed.rejects + validated.rejects), validated.lines or [])


def assert_same(a: Outcome, b: Outcome) -> None:
    assert a.rejects == b.rejects
    assert a.lines == b.lines
    assert a.table.schema == b.table.schema
    assert rows(a.table) == rows(b.table)


def rows(table: pa.Table) -> list[Any]:
    """Rows with floats by their bits (so -0.0 != 0.0) for exact comparison."""
    def exact(v: Any) -> Any:
        if isinstance(v, float):
            return ("float", math.copysign(1.0, v), v.hex())
        if isinstance(v, dict):
            return {key: exact(x) for key, x in v.items()}
        if isinstance(v, list):
            return [exact(x) for x in v]
        return v
    return [exact(r) for r in table.to_pylist()]


def registry_with(ds: Dataset) -> Registry:
    """A registry holding only the defaults and ``ds`` (declared by an in-process plugin)."""
    class Plugin:
        @hookimpl
        def elt_datasets(self) -> list[Dataset]:
            return [ds]

    return load_registry(extra_plugins=[(f"test_{ds.name}", Plugin())], use_entry_points=False)


def through_pipeline(ds: Dataset, lines: list[bytes]):  # type: ignore[no-untyped-def]
    """The real Transformer (files, framing, output) on ``lines`` as one JSONL object."""
    registry = registry_with(ds)
    return transform_lines(registry, registry.dataset(ds.name), lines)


def line(**fields: Any) -> bytes:
    """A record line ``{"event_time": WHEN, **fields}``; values may be ``Raw`` JSON text."""
    return dumps({"event_time": WHEN, **fields}).encode("utf-8", "surrogatepass")


class Raw:
    """JSON text written as is (``1e400``, ``-0``, ``18446744073709551616``)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text})"


def dumps(value: Any, ascii_only: bool = False) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=ascii_only) + ":" + dumps(v, ascii_only)
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v, ascii_only) for v in value) + "]"
    if isinstance(value, str) and not ascii_only:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate can only be written as an escape
            return json.dumps(value, ensure_ascii=True)
    return json.dumps(value, ensure_ascii=ascii_only)


__all__ = ["EVENT_TIME", "Outcome", "Raw", "WHEN", "assert_same", "columnar_path", "dataset", "dumps", "line",
           "record_path", "reference_verdict", "registry_with", "rows", "through_pipeline"]
