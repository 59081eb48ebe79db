"""Default parse: each line is one strict JSON document (no NaN/Infinity, UTF-8 only)."""
from __future__ import annotations

import json

from elt_sdk import hookimpl
from elt_sdk.batch import ParsedBatch, RawBlock, Reject
from elt_sdk.dataset import Dataset


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_no_constants)


def decode_block(block: RawBlock) -> ParsedBatch:
    """Decode every line; a line that fails is a reject and never affects its neighbours."""
    records, raws, linenos, offsets, rejects = [], [], [], [], []
    decode = _decoder.decode
    for line, lineno, offset in zip(block.lines, block.linenos, block.offsets):
        try:
            records.append(decode(line.decode("utf-8")))
        except UnicodeDecodeError as exc:
            rejects.append(Reject(line, lineno, offset, [{"path": "$", "message": f"not valid UTF-8: {exc.reason} at byte {exc.start}"}], "parse"))
            continue
        except (ValueError, RecursionError) as exc:
            rejects.append(Reject(line, lineno, offset, [{"path": "$", "message": f"malformed JSON: {exc}"}], "parse"))
            continue
        raws.append(line)
        linenos.append(lineno)
        offsets.append(offset)
    return ParsedBatch(block.source, records, raws, linenos, offsets, rejects)


@hookimpl(trylast=True)
def elt_parse(dataset: Dataset, block: RawBlock) -> ParsedBatch:
    return decode_block(block)
