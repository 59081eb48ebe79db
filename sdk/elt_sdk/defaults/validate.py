"""Default validate: fastjsonschema decides, valid records become a typed Arrow table.

Batches the columnar parse produced are checked with vector kernels first (``columnar.py``);
only the rows those checks do not accept reach fastjsonschema. fastjsonschema stops at a record's
first error, so a rejected record is re-checked property by property and its quarantine envelope
lists every error. Valid records are converted to Arrow in one call; only when that fails (a
value Arrow cannot hold: an integer beyond 64 bits, a leap second) are rows converted one by one.
"""
from __future__ import annotations

from typing import Any

import fastjsonschema
import pyarrow as pa

from elt_sdk import hookimpl
from elt_sdk import kernels as k
from elt_sdk.batch import ParsedBatch, RawBlock, Reject, ValidatedBatch, decode_line
from elt_sdk.dataset import Dataset
from elt_sdk.defaults import columnar
from elt_sdk.schema import transport_schema

# from_pylist raises Python errors too (an integer beyond 64 bits, a string with a lone surrogate)
_ARROW_ERRORS = (*columnar.ARROW_ERRORS, OverflowError, ValueError, TypeError)


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
    return k.replace_regex(k.utf8_upper(column), r"(\.\d{6})\d+", r"\1")


def to_arrow(dataset: Dataset, records: list[dict]) -> pa.Table:
    """Valid records -> a table in ``dataset.bronze_arrow_schema``; raises on values Arrow refuses."""
    target = dataset.bronze_arrow_schema
    table = pa.Table.from_pylist(records, schema=transport_schema(target))
    columns = []
    for f in target:
        col = table.column(f.name)
        if pa.types.is_timestamp(f.type):
            col = _normalise_times(col)
        columns.append(k.cast(col, f.type) if col.type != f.type else col)
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


def convert_valid(dataset: Dataset, records: list[Any], block: RawBlock, lines: list[int]) -> tuple[pa.Table, list[Reject], list[int]]:
    """Valid records (from ``lines`` of ``block``) -> typed table, rejects of values Arrow
    refuses, and the lines kept."""
    try:
        return to_arrow(dataset, records), [], lines
    except _ARROW_ERRORS:
        pass
    good, kept, rejects = [], [], []
    for line, record in zip(lines, records):
        record = _integral_floats_as_ints(dataset, record)
        try:
            to_arrow(dataset, [record])
        except _ARROW_ERRORS as exc:
            rejects.append(block.reject(line, [{"path": "$", "message": f"value not representable in the silver schema: {exc}"}], "validate"))
            continue
        good.append(record)
        kept.append(line)
    return to_arrow(dataset, good), rejects, kept


def validate_records(dataset: Dataset, block: RawBlock, lines: list[int], records: list[Any]) -> tuple[pa.Table, list[Reject], list[int]]:
    """fastjsonschema on ``records`` (the rows at ``lines`` of ``block``): typed valid rows,
    rejects, and the lines of the valid rows."""
    validator = dataset.validator
    keep_lines, keep, rejects = [], [], []
    for line, record in zip(lines, records):
        try:
            validator(record)
        except fastjsonschema.JsonSchemaValueException:
            rejects.append(block.reject(line, record_errors(dataset, record), "validate"))
            continue
        keep_lines.append(line)
        keep.append(record)
    table, bad, kept = convert_valid(dataset, keep, block, keep_lines)
    return table, rejects + bad, kept


def _validate_columnar(plan: columnar.ColumnarPlan, dataset: Dataset, batch: ParsedBatch) -> ValidatedBatch:
    block, table_lines = batch.block, batch.table_lines
    typed, ok = plan.typed(batch.table, plan.accept(batch.table))
    slow_lines = sorted({table_lines[i] for i in k.indices(k.invert(ok))} | set(batch.decoded))
    if not slow_lines:
        return ValidatedBatch(typed)
    records, lines, rejects = [], [], []
    for line in slow_lines:
        try:
            records.append(batch.decoded[line] if line in batch.decoded else decode_line(block.line(line)))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # pyarrow was laxer than strict JSON
            rejects.append(block.reject(line, [{"path": "$", "message": f"malformed JSON: {exc}"}], "parse"))
            continue
        lines.append(line)
    slow_table, slow_rejects, kept = validate_records(dataset, block, lines, records)
    rejects = sorted(rejects + slow_rejects, key=lambda r: r.line)
    if slow_table.num_rows == 0:
        return ValidatedBatch(typed, rejects)
    order = pa.concat_arrays([k.take(pa.array(table_lines, pa.int64()), pa.array(k.indices(ok), pa.int64())),
                              pa.array(kept, pa.int64())])  # back to line order
    merged = pa.concat_tables([typed, slow_table])
    return ValidatedBatch(k.take(merged, k.sort_indices(order)), rejects)


@hookimpl(trylast=True)
def elt_validate(dataset: Dataset, batch: ParsedBatch) -> ValidatedBatch:
    batch.settle()  # a caller outside the pipeline may hand over a batch parse left work in
    plan = columnar.plan_for(dataset)
    if batch.table is not None and plan is not None:
        return _validate_columnar(plan, dataset, batch)
    table, rejects, _ = validate_records(dataset, batch.block, list(batch.rows), batch.records)
    return ValidatedBatch(table, rejects)
