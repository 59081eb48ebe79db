"""Default validate: fastjsonschema decides, valid records become a typed Arrow table.

The record path (``validate_records``) is the reference: the dataset's compiled validator
(``validator.py``: fastjsonschema with ECMA-262 patterns, exact ``multipleOf``, RFC 3339
formats), then each valid record's values converted to the silver types (``values.py``), which
refuses, with a reason naming the field and the limit, a value the schema accepts but silver
cannot hold (an integer beyond int64, ``1e400``, a timestamp outside years 1-9999, a lone
surrogate). fastjsonschema stops at a record's first error, so a rejected record is re-checked
property by property and its quarantine envelope lists every error.

Batches the columnar parse produced are checked with vector kernels first (``columnar.py``);
only the rows those checks do not accept take the record path, so verdicts, reasons and silver
rows are the record path's whatever the path.
"""
from __future__ import annotations

import logging
import weakref
from typing import Any

import fastjsonschema
import pyarrow as pa

from elt_sdk import hookimpl
from elt_sdk import kernels as k
from elt_sdk.batch import Ambiguous, ParsedBatch, RawBlock, Reject, ValidatedBatch
from elt_sdk.dataset import Dataset
from elt_sdk.defaults import columnar
from elt_sdk.defaults.parse import decode_rows
from elt_sdk.values import ValueIssue

log = logging.getLogger(__name__)

# a validator or a conversion must never raise for one record's values: these become its reject
_RECORD_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError, KeyError, IndexError)


def _path(name: str, prefix: str = "$") -> str:
    return prefix + name[len("data"):] if name.startswith("data") else f"{prefix}.{name}"


def _message(exc: fastjsonschema.JsonSchemaValueException, path: str) -> str:
    return f"{path} {exc.message[len(exc.name) + 1:]}" if exc.message.startswith(exc.name) else exc.message


def record_errors(dataset: Dataset, record: Any) -> list[dict[str, str]]:
    """Every error of an invalid record, as ``{"path": JSON path, "message": ...}``."""
    if not isinstance(record, dict):
        return [{"path": "$", "message": f"record must be a JSON object, got {type(record).__name__}"}]
    schema = dataset.record_shape.schema
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
                errors.append({"path": path, "message": _message(exc, path)})
            except _RECORD_ERRORS as exc:
                errors.append({"path": f"$.{name}", "message": f"$.{name} cannot be validated: {type(exc).__name__}: {exc}"})
        elif schema.get("additionalProperties") is False:
            errors.append({"path": f"$.{name}", "message": "field is not allowed by the schema"})
    if not errors:
        try:
            dataset.validator(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            errors.append({"path": _path(exc.name), "message": exc.message})
        except _RECORD_ERRORS as exc:
            errors.append({"path": "$", "message": f"the record cannot be validated: {type(exc).__name__}: {exc}"})
    return errors or [{"path": "$", "message": "the record is not valid against the schema"}]


def ambiguity_errors(dataset: Dataset, record: Any) -> list[dict[str, str]]:
    """Keys silver keeps that appear twice in one object (``batch.Ambiguous``), at any depth. A
    repeated key silver drops (one the schema does not name) changes nothing, on either path."""
    if not isinstance(record, dict):
        return []
    return [{"path": path, "message": f"{path}: a key that appears twice in its object: which value is meant is ambiguous"}
            for path in _ambiguous_paths(record, _kept_tree(dataset), "$")]


_KEPT_TREES: "weakref.WeakKeyDictionary[Dataset, dict[str, Any]]" = weakref.WeakKeyDictionary()


def _kept_tree(dataset: Dataset) -> dict[str, Any]:
    """What silver keeps of a record, once per dataset (the record path asks for every record):
    a struct as {name: subtree}, a list as ("list", item subtree), anything else None."""
    tree = _KEPT_TREES.get(dataset)
    if tree is None:
        tree = _KEPT_TREES[dataset] = _tree(pa.struct(list(dataset.bronze_arrow_schema)))
    return tree


def _tree(typ: pa.DataType) -> Any:
    if pa.types.is_struct(typ):
        return {f.name: _tree(f.type) for f in typ}
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return ("list", _tree(typ.value_type))
    return None


def _ambiguous_paths(value: Any, kept: Any, path: str) -> list[str]:
    if isinstance(value, dict):
        if not isinstance(kept, dict):  # kept whole (as JSON text): any repeat matters
            return [path] if _any_ambiguity(value) else []
        duplicates = getattr(value, "duplicates", None)
        out = [f"{path}.{k}" for k in sorted(duplicates) if k in kept] if duplicates else []
        for k, sub in kept.items():
            v = value.get(k)
            if isinstance(v, (dict, list)):  # only a container can hold a repeated key
                out += _ambiguous_paths(v, sub, f"{path}.{k}")
        return out
    if isinstance(value, list):
        item = kept[1] if isinstance(kept, tuple) else None
        return [p for i, v in enumerate(value) for p in _ambiguous_paths(v, item, f"{path}[{i}]")]
    return []


def _any_ambiguity(value: Any) -> bool:
    if isinstance(value, dict):
        return isinstance(value, Ambiguous) or any(_any_ambiguity(v) for v in value.values())
    if isinstance(value, list):
        return any(_any_ambiguity(v) for v in value)
    return False


def check_record(dataset: Dataset, record: Any) -> tuple[tuple | None, list[dict[str, str]]]:
    """The record path for one decoded record: its silver column values, or its errors."""
    ambiguous = ambiguity_errors(dataset, record)
    if ambiguous:
        return None, ambiguous
    try:
        dataset.validator(record)
    except fastjsonschema.JsonSchemaValueException:
        return None, record_errors(dataset, record)
    except _RECORD_ERRORS:
        return None, record_errors(dataset, record)
    try:
        return dataset.record_converter(record), []
    except ValueIssue as exc:
        return None, [{"path": exc.path, "message": str(exc)}]
    except _RECORD_ERRORS as exc:
        return None, [{"path": "$", "message": f"value not representable in the silver schema: {type(exc).__name__}: {exc}"}]


def rows_to_table(dataset: Dataset, rows: list[tuple]) -> pa.Table:
    """Converted rows (``Dataset.record_converter``) -> a table in ``dataset.bronze_arrow_schema``."""
    schema = dataset.bronze_arrow_schema
    columns = list(zip(*rows)) if rows else [[] for _ in schema]
    return pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, schema)], schema=schema)


def to_arrow(dataset: Dataset, records: list[dict]) -> pa.Table:
    """Valid records -> a table in ``dataset.bronze_arrow_schema``; raises ValueIssue on a value
    the silver types cannot hold."""
    return rows_to_table(dataset, [dataset.record_converter(r) for r in records])


def validate_records(dataset: Dataset, block: RawBlock, lines: list[int], records: list[Any]) -> tuple[pa.Table, list[Reject], list[int]]:
    """The record path on ``records`` (the rows at ``lines`` of ``block``): typed valid rows,
    rejects, and the lines of the valid rows."""
    rows, kept, rejects = [], [], []
    for line, record in zip(lines, records):
        row, errors = check_record(dataset, record)
        if errors:
            rejects.append(block.reject(line, errors, "validate"))
        else:
            rows.append(row)
            kept.append(line)
    try:
        return rows_to_table(dataset, rows), rejects, kept
    except (pa.ArrowException, *_RECORD_ERRORS):
        pass
    good, good_lines = [], []  # a value Arrow still refuses: find it, row by row
    for line, row in zip(kept, rows):
        try:
            rows_to_table(dataset, [row])
        except (pa.ArrowException, *_RECORD_ERRORS) as exc:
            rejects.append(block.reject(line, [{"path": "$", "message": f"value not representable in the silver schema: {exc}"}], "validate"))
            continue
        good.append(row)
        good_lines.append(line)
    rejects.sort(key=lambda r: r.line)
    return rows_to_table(dataset, good), rejects, good_lines


def _validate_columnar(plan: columnar.ColumnarPlan, dataset: Dataset, batch: ParsedBatch) -> ValidatedBatch:
    block, table_lines = batch.block, batch._table_lines
    try:
        casts: dict[str, Any] = {}
        if batch._accepted is batch._table:  # checked on the parse thread (culprits found by row)
            ok = columnar.uniform_mask(batch._table.num_rows, True)
        else:
            ok = plan.accept(batch._table, casts)
        typed, ok = plan.typed(batch._table, ok, casts)
    except columnar.CHECK_ERRORS:  # a gap in the vector checks: the record path decides all
        log.warning("columnar checks failed for dataset %s; deciding the block record by record", dataset.name,
                    exc_info=True)
        typed, ok = plan.typed(batch._table, columnar.uniform_mask(batch._table.num_rows, False))
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
