"""What every plugin author gets for free: hypothesis strategies derived from a dataset's JSON
Schema, a harness that runs the real hook chain on lines, and a standard test suite.

Needs the ``testing`` extra: ``pip install 'elt-sdk[testing]'``.
"""
from elt_sdk.testing.harness import TransformResult, reference_verdict, transform_lines
from elt_sdk.testing.strategies import (FieldStrategies, StrategyError, broken_records, invalid_lines,
                                        invalid_records, lines, valid_records)

__all__ = ["FieldStrategies", "StrategyError", "TransformResult", "broken_records", "invalid_lines",
           "invalid_records", "lines", "reference_verdict", "transform_lines", "valid_records"]
