"""Data-quality rules a dataset declares (``rules.json``), checked on an Arrow table of silver
rows — one partition, say. Each rule is a small JSON object; every rule reports its own verdict.

    {"rule": "row_count_min", "min": 1}
    {"rule": "not_null", "column": "shipment_id"}
    {"rule": "between", "column": "weight_kg", "min": 0, "max": 5000}
    {"rule": "accepted_values", "column": "carrier", "values": ["UPS", "DHL"]}
    {"rule": "unique", "column": "shipment_id", "max_duplicate_ratio": 0.0}
    {"rule": "max_null_ratio", "column": "note", "max": 0.2}
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import pyarrow as pa

from elt_sdk import kernels as k


class RuleError(ValueError):
    """A rule that cannot be checked (unknown kind, missing column or parameter)."""


@dataclass
class RuleResult:
    rule: str
    column: str | None
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _col(table: pa.Table, rule: Mapping[str, Any]) -> pa.ChunkedArray:
    name = rule.get("column")
    if name not in table.column_names:
        raise RuleError(f"{rule['rule']}: column {name!r} is not in the table")
    return table.column(name)


def _row_count_min(table: pa.Table, rule: Mapping[str, Any]) -> tuple[bool, str]:
    return table.num_rows >= rule["min"], f"{table.num_rows} rows (min {rule['min']})"


def _not_null(table: pa.Table, rule: Mapping[str, Any]) -> tuple[bool, str]:
    nulls = _col(table, rule).null_count
    return nulls == 0, f"{nulls} null(s)"


def _max_null_ratio(table: pa.Table, rule: Mapping[str, Any]) -> tuple[bool, str]:
    ratio = _col(table, rule).null_count / max(table.num_rows, 1)
    return ratio <= rule["max"], f"null ratio {ratio:.4f} (max {rule['max']})"


def _between(table: pa.Table, rule: Mapping[str, Any]) -> tuple[bool, str]:
    col = _col(table, rule)
    outside = 0
    if "min" in rule:
        outside += k.count_true(k.compare("less", col, rule["min"]))
    if "max" in rule:
        outside += k.count_true(k.compare("greater", col, rule["max"]))
    return outside == 0, f"{outside} value(s) outside [{rule.get('min', '-inf')}, {rule.get('max', 'inf')}]"


def _accepted_values(table: pa.Table, rule: Mapping[str, Any]) -> tuple[bool, str]:
    col = _col(table, rule)
    bad = k.count_true(k.invert(k.is_in(col, pa.array(rule["values"]))))
    bad -= col.null_count  # nulls are not_null's business
    return bad == 0, f"{bad} value(s) not in {rule['values']}"


def _unique(table: pa.Table, rule: Mapping[str, Any]) -> tuple[bool, str]:
    col = _col(table, rule)
    dupes = table.num_rows - len(k.unique(col))
    ratio = dupes / max(table.num_rows, 1)
    limit = rule.get("max_duplicate_ratio", 0.0)
    return ratio <= limit, f"{dupes} duplicate(s), ratio {ratio:.4f} (max {limit})"


CHECKS: dict[str, Callable[[pa.Table, Mapping[str, Any]], tuple[bool, str]]] = {
    "row_count_min": _row_count_min, "not_null": _not_null, "max_null_ratio": _max_null_ratio,
    "between": _between, "accepted_values": _accepted_values, "unique": _unique,
}
REQUIRED = {"row_count_min": ("min",), "not_null": ("column",), "max_null_ratio": ("column", "max"),
            "between": ("column",), "accepted_values": ("column", "values"), "unique": ("column",)}


def check_rules(rules: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    """Raise RuleError for a rule that could never be evaluated."""
    for rule in rules:
        kind = rule.get("rule")
        if kind not in CHECKS:
            raise RuleError(f"unknown quality rule {kind!r}; known: {', '.join(sorted(CHECKS))}")
        missing = [p for p in REQUIRED[kind] if p not in rule]
        if missing:
            raise RuleError(f"{kind}: missing {', '.join(missing)}")
        if columns is not None and "column" in rule and rule["column"] not in columns:
            raise RuleError(f"{kind}: column {rule['column']!r} is not a silver column")


def evaluate(rules: Sequence[Mapping[str, Any]], table: pa.Table) -> list[RuleResult]:
    results = []
    for rule in rules:
        passed, detail = CHECKS[rule["rule"]](table, rule)
        results.append(RuleResult(rule["rule"], rule.get("column"), bool(passed), detail))
    return results


# -- the gate: a dataset's rules on one silver partition -------------------------------------------

RESULTS_PREFIX = "quality/results/"
MARKERS_PREFIX = "quality/quarantine/"


def rule_columns(rules: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({r["column"] for r in rules if "column" in r})


def read_partition(store: Any, dataset: Any, dt: str, columns: Sequence[str]) -> pa.Table:
    """The partition's rows, only ``columns`` of them (one file at a time is read), as every
    query engine sees them: all its Parquet files."""
    import tempfile
    from pathlib import Path

    import pyarrow.parquet as pq

    from elt_sdk.partition import local_path, parquet_files

    schema = dataset.arrow_schema
    cols = list(columns) or [schema.names[0]]  # one column, so that a row count is a row count
    target = pa.schema([schema.field(c) for c in cols])
    tables = []
    with tempfile.TemporaryDirectory(prefix="elt-quality-") as tmp:
        for key in parquet_files(store, dataset.name, dt):
            with local_path(store, key, Path(tmp)) as path:
                tables.append(pq.read_table(path, columns=cols).cast(target))
    return pa.concat_tables(tables) if tables else target.empty_table()


def check_partition(store: Any, dataset: Any, dt: str, *, results_prefix: str | None = RESULTS_PREFIX,
                    marker: bool = True, clock: Callable[[], float] | None = None) -> dict[str, Any]:
    """Run ``dataset``'s rules on partition ``dt`` of ``store`` (the silver store); write the verdict
    under ``results_prefix`` (None: not written) and, when it fails and ``marker``, a marker under
    ``quality/quarantine/``. The gate's Lambda and ``elt-sdk dq check`` both call this."""
    import json
    import time

    from elt_sdk import layout

    now = (clock or time.time)()
    table = read_partition(store, dataset, dt, rule_columns(dataset.quality_rules))
    results = evaluate(dataset.quality_rules, table)
    passed = all(r.passed for r in results)
    verdict: dict[str, Any] = {"dataset": dataset.name, "dt": dt, "passed": passed, "rows": table.num_rows,
                               "results": [r.to_dict() for r in results], "checked_at": int(now),
                               "failed": [describe(r) for r in results if not r.passed]}
    if results_prefix:
        # milliseconds in the key: two checks of a partition within a second both stay
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
        key = layout.silver_partition(dataset.name, dt, root=results_prefix) + f"{stamp}.json"
        store.put_bytes(key, json.dumps(verdict).encode())
        verdict["result_key"] = key
    if not passed and marker:
        store.put_bytes(f"{MARKERS_PREFIX}{dataset.name}/dt={dt}.json", json.dumps(verdict).encode())
    return verdict


def describe(result: RuleResult | Mapping[str, Any]) -> str:
    """``unique(shipment_id): 3 duplicate(s) ...``: how a failed rule is named to a person."""
    r = result.to_dict() if isinstance(result, RuleResult) else result
    return f"{r['rule']}({r['column']})" + f": {r['detail']}" if r.get("column") else f"{r['rule']}: {r['detail']}"
