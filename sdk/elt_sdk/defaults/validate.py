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
from elt_sdk.batch import ParsedBatch, RawBlock, Reject, ValidatedBatch
from elt_sdk.dataset import Dataset
from elt_sdk.defaults import columnar
from elt_sdk.defaults.parse import decode_rows
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
    for i, f in enumerate(target):
        if pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, _normalise_times(table.column(i)))
    return k.cast_table(table, target)


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
    block, table_lines = batch.block, batch._table_lines
    typed, ok = plan.typed(batch._table, plan.accept(batch._table))
    refused = [table_lines[i] for i in k.indices(k.invert(ok))]
    if not refused and not batch.decoded:
        return ValidatedBatch(typed, lines=list(table_lines))
    # rows the vector checks did not accept are decided record by record; strict JSON may refuse
    # a line pyarrow read (it is laxer), which makes that line a parse reject
    again = ParsedBatch(block, [])
    decode_rows(block, refused, again)
    decoded = {**batch.decoded, **again.decoded}
    lines = sorted(decoded)
    slow_table, slow_rejects, kept = validate_records(dataset, block, lines, [decoded[line] for line in lines])
    rejects = sorted(again.rejects + slow_rejects, key=lambda r: r.line)
    fast_lines = k.take(pa.array(table_lines, pa.int64()), k.nonzero(ok))
    if slow_table.num_rows == 0:
        return ValidatedBatch(typed, rejects, fast_lines.to_pylist())
    order = pa.concat_arrays([fast_lines, pa.array(kept, pa.int64())])  # back to line order
    merged = pa.concat_tables([typed, slow_table])
    by_line = k.sort_indices(order)
    return ValidatedBatch(k.take(merged, by_line), rejects, k.take(order, by_line).to_pylist())


@hookimpl(trylast=True)
def elt_validate(dataset: Dataset, batch: ParsedBatch) -> ValidatedBatch:
    batch._settle()  # a caller outside the pipeline may hand over a batch parse left work in
    plan = columnar.plan_for(dataset)
    if batch._table is not None and plan is not None:
        return _validate_columnar(plan, dataset, batch)
    table, rejects, kept = validate_records(dataset, batch.block, list(batch.rows), batch.records)
    return ValidatedBatch(table, rejects, kept)
