"""Quality rules over silver rows: each rule's verdict and detail, and rules that could never run."""
from __future__ import annotations

import pyarrow as pa
import pytest

from elt_sdk.quality import RuleError, check_rules, evaluate

TABLE = pa.table({"weight": [1.0, 5.0, None, 700.0], "carrier": ["UPS", "X", None, "UPS"], "id": ["a", "a", "b", "c"]})


@pytest.mark.parametrize(("rule", "passed", "detail"), [
    ({"rule": "row_count_min", "min": 4}, True, "4 rows (min 4)"),
    ({"rule": "row_count_min", "min": 5}, False, "4 rows (min 5)"),
    ({"rule": "not_null", "column": "weight"}, False, "1 null(s)"),
    ({"rule": "not_null", "column": "id"}, True, "0 null(s)"),
    ({"rule": "max_null_ratio", "column": "carrier", "max": 0.25}, True, "null ratio 0.2500 (max 0.25)"),
    ({"rule": "max_null_ratio", "column": "carrier", "max": 0.2}, False, "null ratio 0.2500 (max 0.2)"),
    ({"rule": "between", "column": "weight", "min": 0, "max": 500}, False, "1 value(s) outside [0, 500]"),
    ({"rule": "between", "column": "weight", "min": 2}, False, "1 value(s) outside [2, inf]"),
    ({"rule": "between", "column": "weight", "max": 1000}, True, "0 value(s) outside [-inf, 1000]"),
    ({"rule": "accepted_values", "column": "carrier", "values": ["UPS"]}, False, "1 value(s) not in ['UPS']"),
    ({"rule": "accepted_values", "column": "carrier", "values": ["UPS", "X"]}, True, "0 value(s) not in ['UPS', 'X']"),
    ({"rule": "unique", "column": "id"}, False, "1 duplicate(s), ratio 0.2500 (max 0.0)"),
    ({"rule": "unique", "column": "id", "max_duplicate_ratio": 0.25}, True, "1 duplicate(s), ratio 0.2500 (max 0.25)"),
])
def test_each_rule_reports_its_verdict(rule, passed, detail):
    [result] = evaluate([rule], TABLE)
    assert (result.passed, result.detail) == (passed, detail)


@pytest.mark.parametrize(("rule", "message"), [
    ({"rule": "median"}, "unknown quality rule 'median'"),
    ({"rule": "between"}, "between: missing column"),
    ({"rule": "not_null", "column": "nope"}, "not_null: column 'nope' is not a silver column"),
])
def test_rules_that_could_never_run_are_refused(rule, message):
    with pytest.raises(RuleError, match=message):
        check_rules([rule], TABLE.column_names)
