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
import pyarrow.compute as pc

from elt_sdk import hookimpl
from elt_sdk.batch import ParsedBatch, Reject, ValidatedBatch, decode_line
from elt_sdk.dataset import Dataset
from elt_sdk.defaults import columnar
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


def convert_valid(dataset: Dataset, records: list[Any], make_reject) -> tuple[pa.Table, list[Reject], list[int]]:
    """Valid records -> typed table; the rejects of values Arrow refuses; the kept positions."""
    try:
        return to_arrow(dataset, records), [], list(range(len(records)))
    except _ARROW_ERRORS:
        pass
    good, kept, rejects = [], [], []
    for pos, record in enumerate(records):
        record = _integral_floats_as_ints(dataset, record)
        try:
            to_arrow(dataset, [record])
            good.append(record)
            kept.append(pos)
        except _ARROW_ERRORS as exc:
            rejects.append(make_reject(pos, [{"path": "$", "message": f"value not representable in the silver schema: {exc}"}]))
    return to_arrow(dataset, good), rejects, kept


def validate_records(dataset: Dataset, batch: ParsedBatch, positions: list[int], records: list[Any]) -> tuple[pa.Table, list[Reject], list[int]]:
    """fastjsonschema on ``records`` (rows at ``positions`` of ``batch``): typed valid rows,
    rejects, and the batch positions of the valid rows."""
    validator = dataset.validator
    keep_pos, keep, rejects = [], [], []
    for pos, record in zip(positions, records):
        try:
            validator(record)
        except fastjsonschema.JsonSchemaValueException:
            rejects.append(batch.reject(pos, record_errors(dataset, record), "validate"))
            continue
        keep_pos.append(pos)
        keep.append(record)
    table, bad, kept = convert_valid(dataset, keep, lambda i, errors: batch.reject(keep_pos[i], errors, "validate"))
    return table, rejects + bad, [keep_pos[i] for i in kept]


def _validate_columnar(plan: columnar.ColumnarPlan, dataset: Dataset, batch: ParsedBatch) -> ValidatedBatch:
    table, table_lines = batch.table, batch.table_lines
    ok = plan.accept(table)
    accepted_idx = pc.indices_nonzero(ok)
    typed, refused = plan.typed(table.filter(ok))
    slow = pc.indices_nonzero(pc.invert(ok)).to_pylist()
    if refused:  # positions within the accepted rows whose values Arrow refused
        keep = pc.invert(pc.is_in(pa.array(range(len(accepted_idx))), value_set=pa.array(refused)))
        slow += [accepted_idx[i].as_py() for i in refused]
        accepted_idx = accepted_idx.filter(keep)
    slow_lines = sorted({table_lines[i] for i in slow} | set(batch.decoded))
    if not slow_lines:
        return ValidatedBatch(typed)
    position = {line: pos for pos, line in enumerate(batch.rows)} if len(slow_lines) > 64 else None
    positions = [position[line] if position else batch.rows.index(line) for line in slow_lines]
    lines = batch.block.lines
    records, decoded_positions, rejects = [], [], []
    for line, pos in zip(slow_lines, positions):
        if line in batch.decoded:
            records.append(batch.decoded[line])
            decoded_positions.append(pos)
            continue
        try:
            records.append(decode_line(lines[line]))
            decoded_positions.append(pos)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # pyarrow was laxer than strict JSON
            rejects.append(batch.reject(pos, [{"path": "$", "message": f"malformed JSON: {exc}"}], "parse"))
    slow_table, slow_rejects, kept = validate_records(dataset, batch, decoded_positions, records)
    rejects = sorted(rejects + slow_rejects, key=lambda r: r.line)
    if slow_table.num_rows == 0:
        return ValidatedBatch(typed, rejects)
    fast_lines = accepted_idx if isinstance(table_lines, range) and table_lines.start == 0 and table_lines.step == 1 \
        else pc.take(pa.array(table_lines, pa.int64()), accepted_idx)
    order = pa.concat_arrays([fast_lines.cast(pa.int64()), pa.array([batch.rows[p] for p in kept], pa.int64())])
    merged = pa.concat_tables([typed, slow_table])
    return ValidatedBatch(merged.take(pc.sort_indices(order)), rejects)


@hookimpl(trylast=True)
def elt_validate(dataset: Dataset, batch: ParsedBatch) -> ValidatedBatch:
    plan = columnar.plan_for(dataset)
    if batch.table is not None and plan is not None:
        return _validate_columnar(plan, dataset, batch)
    table, rejects, _ = validate_records(dataset, batch, list(range(len(batch))), batch.records)
    return ValidatedBatch(table, rejects)
