"""Default validate: fastjsonschema decides, then valid records become a typed Arrow table.

fastjsonschema stops at a record's first error; a rejected record is re-checked property by
property so its quarantine envelope lists every error. Valid records are converted in one
Arrow call; only when that fails (a value Arrow cannot hold, such as an integer beyond 64 bits or
a leap second) are rows converted one by one to find and reject the culprits.
"""
from __future__ import annotations

from typing import Any

import fastjsonschema
import pyarrow as pa
import pyarrow.compute as pc

from elt_sdk import hookimpl
from elt_sdk.batch import ParsedBatch, Reject, ValidatedBatch
from elt_sdk.dataset import Dataset
from elt_sdk.schema import transport_schema

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, ValueError, TypeError)


def _path(name: str, prefix: str = "$") -> str:
    return prefix + name[len("data"):] if name.startswith("data") else f"{prefix}.{name}"


def record_errors(dataset: Dataset, record: Any) -> list[dict[str, str]]:
    """Every error of an invalid record, as ``{"path": JSON path, "message": ...}``."""
    if not isinstance(record, dict):
        return [{"path": "$", "message": f"record must be a JSON object, got {type(record).__name__}"}]
    schema = dataset.json_schema
    errors = []
    for name in schema.get("required", ()):
        if name not in record:
            errors.append({"path": f"$.{name}", "message": "required field is missing"})
    props = schema.get("properties", {})
    for name, value in record.items():
        if name in props:
            try:
                dataset.property_validators[name](value)
            except fastjsonschema.JsonSchemaValueException as exc:
                path = _path(exc.name, f"$.{name}")
                errors.append({"path": path, "message": f"{path} {exc.message[len(exc.name) + 1:]}"
                               if exc.message.startswith(exc.name) else exc.message})
        elif schema.get("additionalProperties") is False:
            errors.append({"path": f"$.{name}", "message": "field is not allowed by the schema"})
    if not errors:
        try:
            dataset.validator(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            errors.append({"path": _path(exc.name), "message": exc.message})
    return errors


def _normalise_times(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """RFC 3339 allows lowercase t/z and any number of fraction digits; Arrow wants 'T', 'Z', <= 6."""
    upper = pc.utf8_upper(column)
    return pc.replace_substring_regex(upper, pattern=r"(\.\d{6})\d+", replacement=r"\1")


def to_arrow(dataset: Dataset, records: list[dict]) -> pa.Table:
    """Valid records -> a table in ``dataset.bronze_arrow_schema``; raises on values Arrow refuses."""
    target = dataset.bronze_arrow_schema
    table = pa.Table.from_pylist(records, schema=transport_schema(target))
    columns = []
    for f in target:
        col = table.column(f.name)
        if pa.types.is_timestamp(f.type):
            col = _normalise_times(col)
        columns.append(col.cast(f.type) if col.type != f.type else col)
    return pa.Table.from_arrays(columns, schema=target)


def _integral_floats_as_ints(dataset: Dataset, record: dict) -> dict:
    """JSON Schema counts 2.0 as an integer; Arrow's int64 wants 2. Nothing else is coerced."""
    fixed = None
    for f in dataset.bronze_arrow_schema:
        value = record.get(f.name)
        if pa.types.is_integer(f.type) and isinstance(value, float) and value.is_integer():
            fixed = fixed or dict(record)
            fixed[f.name] = int(value)
    return fixed or record


def convert_valid(dataset: Dataset, batch: ParsedBatch, keep: list[int]) -> tuple[pa.Table, list[Reject]]:
    records = [batch.records[i] for i in keep]
    try:
        return to_arrow(dataset, records), []
    except _ARROW_ERRORS:
        pass
    good, rejects = [], []
    for i in keep:
        record = _integral_floats_as_ints(dataset, batch.records[i])
        try:
            to_arrow(dataset, [record])
            good.append(record)
        except _ARROW_ERRORS as exc:
            rejects.append(Reject(batch.raws[i], batch.linenos[i], batch.offsets[i],
                                  [{"path": "$", "message": f"value not representable in the silver schema: {exc}"}], "validate"))
    return to_arrow(dataset, good), rejects


@hookimpl(trylast=True)
def elt_validate(dataset: Dataset, batch: ParsedBatch) -> ValidatedBatch:
    validator = dataset.validator
    keep: list[int] = []
    rejects: list[Reject] = []
    for i, record in enumerate(batch.records):
        try:
            validator(record)
        except fastjsonschema.JsonSchemaValueException:
            rejects.append(Reject(batch.raws[i], batch.linenos[i], batch.offsets[i], record_errors(dataset, record), "validate"))
            continue
        keep.append(i)
    table, bad = convert_valid(dataset, batch, keep)
    return ValidatedBatch(table, rejects + bad)
