"""Default parse: strict JSON, one document per line (UTF-8 only, no NaN/Infinity).

Datasets whose schema the vector checks can decide exactly are parsed by pyarrow's JSON reader
(``columnar.py``); the others, and every line the columnar screens set aside, line by line.
"""
from __future__ import annotations

from elt_sdk import hookimpl
from elt_sdk.batch import ParsedBatch, RawBlock, decode_line
from elt_sdk.dataset import Dataset
from elt_sdk.defaults import columnar


def decode_rows(block: RawBlock, indices, batch: ParsedBatch) -> None:
    """Decode the lines at ``indices`` one by one into ``batch`` (rows or rejects)."""
    # many rows: split the block once; a few: slice them out
    line_at = block.lines.__getitem__ if len(indices) > block.line_count // 8 else block.line
    for i in indices:
        line = line_at(i)
        if not line or line.isspace():
            continue
        try:
            batch.decoded[i] = decode_line(line)
        except UnicodeDecodeError as exc:
            batch.rejects.append(block.reject(i, [{"path": "$", "message": f"not valid UTF-8: {exc.reason} at byte {exc.start}"}], "parse", line))
        except (ValueError, RecursionError) as exc:
            batch.rejects.append(block.reject(i, [{"path": "$", "message": f"malformed JSON: {exc}"}], "parse", line))


def decode_block(block: RawBlock) -> ParsedBatch:
    """Every line decoded on its own: the path for any dataset, and for routing mixed objects."""
    batch = ParsedBatch(block, [])
    decode_rows(block, range(block.line_count), batch)
    batch.rows = sorted(batch.decoded)
    batch.rejects.sort(key=lambda r: r.line)
    return batch


@hookimpl(trylast=True)
def elt_parse(dataset: Dataset, block: RawBlock) -> ParsedBatch:
    plan = columnar.plan_for(dataset)
    if plan is None:
        return decode_block(block)
    return plan.parse(block, decode_rows)


__all__ = ["decode_block", "decode_rows", "elt_parse"]
