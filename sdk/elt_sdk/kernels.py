"""Arrow compute kernels, called without importing ``pyarrow.compute`` (public API: plugins' batch
maps use it too, ``from elt_sdk import kernels as k``).

``import pyarrow.compute`` builds a Python wrapper, with a docstring scraped from the C++ docs,
for each of ~300 kernels: about 20 ms, half of ``import pyarrow.parquet`` again, paid by every
Lambda cold start. The kernels themselves live in ``pyarrow._compute`` and are called by name
through ``call_function`` (public as ``pyarrow.compute.call_function``). pyarrow's own methods
that route through ``pyarrow.compute`` (``Table.filter``, ``Array.cast``, ``take``) are avoided
in the transform path for the same reason; ``tests/test_hot_path.py`` keeps it that way.
Compaction and tests may use ``pyarrow.compute`` freely.

``pyarrow._compute`` is pyarrow's private module: this file is the one place that touches it,
and falls back to the public ``pyarrow.compute`` (same classes, slower import) if a pyarrow
release moves it. ``call(name, *args)`` reaches any kernel not wrapped below.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa
try:  # the private module: ~20 ms cheaper to import than pyarrow.compute
    from pyarrow._compute import (CastOptions, CumulativeOptions, FilterOptions, MatchSubstringOptions,
                                  ReplaceSubstringOptions, RoundOptions, ScalarAggregateOptions, SetLookupOptions,
                                  SplitPatternOptions, TakeOptions, call_function)
    PRIVATE_API = True
except ImportError:  # pragma: no cover - a pyarrow that moved it: the public names, same classes
    from pyarrow.compute import (CastOptions, CumulativeOptions, FilterOptions, MatchSubstringOptions,  # type: ignore
                                 ReplaceSubstringOptions, RoundOptions, ScalarAggregateOptions, SetLookupOptions,
                                 SplitPatternOptions, TakeOptions, call_function)
    PRIVATE_API = False

try:  # pyarrow imports dateutil.relativedelta on its first Python-to-Arrow conversion (pa.scalar(1))
    # and drops any error that import raises: a Ctrl-C or SIGTERM landing in it was lost, and the
    # transform ran on (tests/test_interrupts.py saw it about once in 30 runs). Imported here,
    # an interrupt during the import propagates, and pyarrow's import later runs no Python code.
    import dateutil.relativedelta  # noqa: F401
except ImportError:  # pragma: no cover - pyarrow then skips it too
    pass

Datum = Any  # an Array, ChunkedArray, Table or Scalar
ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
"""What a kernel raises for values or types it cannot take."""
_ARROW = (pa.Scalar, pa.Array, pa.ChunkedArray)


def call(name: str, *args: Datum, options: Any = None) -> Datum:
    """Any Arrow kernel by name, e.g. ``call("utf8_trim_whitespace", column)``."""
    return call_function(name, [a if isinstance(a, _ARROW) or isinstance(a, pa.Table) else pa.scalar(a) for a in args],
                         options)


def multiply(values: Datum, other: Any) -> Datum:
    return call_function("multiply", [values, other if isinstance(other, _ARROW) else pa.scalar(other)])


def subtract(values: Datum, other: Any) -> Datum:
    return call_function("subtract", [values, other if isinstance(other, _ARROW) else pa.scalar(other)])


def divide(values: Datum, other: Any) -> Datum:
    return call_function("divide", [values, other if isinstance(other, _ARROW) else pa.scalar(other)])


def round(values: Datum, ndigits: int = 0) -> Datum:  # noqa: A001 - the kernel's name
    return call_function("round", [values], RoundOptions(ndigits))


def and_(left: Datum, right: Datum) -> Datum:
    return call_function("and", [left, right])


def or_(left: Datum, right: Datum) -> Datum:
    return call_function("or", [left, right])


def invert(values: Datum) -> Datum:
    return call_function("invert", [values])


def compare(op: str, values: Datum, bound: Any) -> Datum:
    """``op``: equal, greater, greater_equal, less, less_equal."""
    return call_function(op, [values, bound if isinstance(bound, _ARROW) else pa.scalar(bound)])


def is_valid(values: Datum) -> Datum:
    return call_function("is_valid", [values])


def is_finite(values: Datum) -> Datum:
    return call_function("is_finite", [values])


def is_in(values: Datum, value_set: pa.Array) -> Datum:
    return call_function("is_in", [values], SetLookupOptions(value_set))


def add(values: Datum, other: Any) -> Datum:
    return call_function("add", [values, other if isinstance(other, _ARROW) else pa.scalar(other, values.type)])


def cumulative_sum(values: Datum) -> Datum:
    return call_function("cumulative_sum", [values], CumulativeOptions(pa.scalar(0, values.type)))


def split_pattern(values: Datum, pattern: str) -> Datum:
    return call_function("split_pattern", [values], SplitPatternOptions(pattern))


def binary_length(values: Datum) -> Datum:
    return call_function("binary_length", [values])


def utf8_length(values: Datum) -> Datum:
    return call_function("utf8_length", [values])


def starts_with(values: Datum, prefix: str) -> Datum:
    return call_function("starts_with", [values], MatchSubstringOptions(prefix))


def ends_with(values: Datum, suffix: str) -> Datum:
    return call_function("ends_with", [values], MatchSubstringOptions(suffix))


def find(values: Datum, literal: str) -> Datum:
    """Where ``literal`` first occurs in each value (-1 where it does not)."""
    return call_function("find_substring", [values], MatchSubstringOptions(literal))


def matches(values: Datum, pattern: str) -> Datum:
    """RE2 search (unanchored unless the pattern anchors itself)."""
    return call_function("match_substring_regex", [values], MatchSubstringOptions(pattern))


def replace_regex(values: Datum, pattern: str, replacement: str) -> Datum:
    return call_function("replace_substring_regex", [values], ReplaceSubstringOptions(pattern, replacement))


def utf8_upper(values: Datum) -> Datum:
    return call_function("utf8_upper", [values])


def fill_null(values: Datum, fill: Any) -> Datum:
    return call_function("coalesce", [values, pa.scalar(fill)])


def any_true(values: Datum) -> bool:
    return bool(call_function("any", [values], ScalarAggregateOptions(skip_nulls=True)).as_py())


def all_true(values: Datum) -> bool:
    """Every value true (nulls skipped)."""
    return bool(call_function("all", [values], ScalarAggregateOptions(skip_nulls=True)).as_py())


def count_true(mask: Datum) -> int:
    return call_function("sum", [mask]).as_py() or 0


def nonzero(mask: Datum) -> pa.UInt64Array:
    """Positions where ``mask`` is true."""
    if isinstance(mask, pa.ChunkedArray) and mask.num_chunks == 0:  # pyarrow 17 crashes on it
        return pa.array([], pa.uint64())
    return call_function("indices_nonzero", [mask])


def indices(mask: Datum) -> list[int]:
    """Positions where ``mask`` is true, as Python ints."""
    return nonzero(mask).to_pylist()


def filter(data: Datum, mask: Datum) -> Datum:  # noqa: A001 - the kernel's name
    return call_function("filter", [data, mask], FilterOptions("drop"))


def take(data: Datum, positions: Datum) -> Datum:
    return call_function("take", [data, positions], TakeOptions(boundscheck=True))


def cast(values: Datum, target: pa.DataType) -> Datum:
    """Safe cast: raises ArrowInvalid where a value does not fit ``target``."""
    return call_function("cast", [values], CastOptions.safe(target))


class ColumnCastError(pa.ArrowInvalid):
    """A column of a table does not cast to its field of a schema; ``field`` says which."""

    def __init__(self, field: pa.Field, source: pa.DataType, cause: Exception):
        super().__init__(f"column {field.name} is {source}, schema says {field.type}: {cause}")
        self.field = field


def cast_table(table: pa.Table, schema: pa.Schema, done: dict[str, Datum] | None = None) -> pa.Table:
    """The columns of ``table`` that ``schema`` names, in its order and cast to its types (safe
    casts); raises ColumnCastError for the first that does not fit. ``done``: columns the caller
    cast already (row for row with ``table``), used where their type is the schema's."""
    columns = []
    for f in schema:
        col = table.column(f.name)
        if done and f.name in done and done[f.name].type == f.type:
            col = done[f.name]
        elif col.type != f.type:
            try:
                col = cast(col, f.type)
            except ARROW_ERRORS as exc:
                raise ColumnCastError(f, col.type, exc) from exc
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)


def unique(values: Datum) -> pa.Array:
    return call_function("unique", [values])


def sort_indices(values: Datum) -> pa.Array:
    return call_function("sort_indices", [values])


def value_counts(values: Datum) -> pa.StructArray:
    """Distinct values (field 0) and their counts (field 1), in order of first appearance."""
    return call_function("value_counts", [values])
