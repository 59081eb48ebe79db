"""Run the real hook chain on in-memory lines, and the reference verdict to compare it with."""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from elt_sdk import layout
from elt_sdk.batch import decode_line
from elt_sdk.dataset import Dataset
from elt_sdk.pipeline import ObjectReport, Transformer
from elt_sdk.plugins import Registry
from elt_sdk.store import LocalStore
from elt_sdk.source import LocalSource


FIXED_MTIME_NS = 1_700_000_000 * 10**9


@dataclass
class TransformResult:
    silver: pa.Table
    quarantine: list[dict[str, Any]]
    report: ObjectReport
    files: dict[str, bytes]
    """Output files by key (without the commit round), commit records left out."""


def transform_lines(registry: Registry, dataset: Dataset, lines: list[bytes], *, fmt: str = "jsonl",
                    input_dir: Path | None = None, transformer: Transformer | None = None) -> TransformResult:
    """Write ``lines`` as one bronze object and run it through the installed hooks.

    The input file goes to ``input_dir`` when given (two runs on the same path must give the same
    bytes: quarantine envelopes name their source), else to a fresh temporary folder.
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = input_dir or root
        src = folder / ("in.json" if fmt == "json" else "in.jsonl")
        if fmt == "json":
            src.write_bytes(b"[" + b",".join(lines) + b"]")
        else:
            src.write_bytes(b"\n".join(lines) + b"\n")
        os.utime(src, ns=(FIXED_MTIME_NS, FIXED_MTIME_NS))  # same bytes, same version: same output
        out = root / "out"
        report = (transformer or Transformer(registry)).transform_object(LocalSource.from_path(src, key=dataset.bronze_prefix + src.name),
                                                        LocalStore(out), dataset=dataset.name)
        files = {_stable_name(p.relative_to(out).as_posix()): p.read_bytes() for p in sorted(out.rglob("*"))
                 if p.is_file() and not p.relative_to(out).as_posix().startswith(layout.META_PREFIX)}
        part_dir = out / "silver" / dataset.name
        if part_dir.exists():
            silver = pads.dataset(part_dir, format="parquet", partitioning="hive").to_table()
            silver = silver.sort_by([(dataset.event_time_field, "ascending")]) if silver.num_rows else silver
        else:
            silver = dataset.arrow_schema.empty_table()
        quarantine = [json.loads(line) for p in (out / "quarantine").rglob("*.jsonl") for line in p.read_text().split("\n") if line] \
            if (out / "quarantine").exists() else []
        return TransformResult(silver, sorted(quarantine, key=lambda r: r["line"]), report, files)


def _stable_name(key: str) -> str:
    """An output key without its commit round (unique per commit by design), so two runs on the
    same input can be compared file by file."""
    return re.sub(r"-[0-9a-f]{8}-c(\d{4})", r"-c\1", key)


def reference_verdict(dataset: Dataset, line: bytes) -> bool:
    """Is this line a valid record? The record path, without Arrow: strict JSON (UTF-8, no
    NaN/Infinity), the dataset's validator (fastjsonschema with ECMA-262 patterns, exact
    ``multipleOf``, RFC 3339 formats), then values the silver types can hold (int64, float64,
    timestamps in years 1-9999 UTC, no lone surrogates). The pipeline, on any path, must agree."""
    from elt_sdk.defaults.validate import check_record

    try:
        record = decode_line(line)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    _, errors = check_record(dataset, record)
    return not errors
