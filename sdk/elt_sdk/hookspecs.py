"""The hook contract between the SDK and its plugins.

A plugin is any module or object with functions marked ``@elt_sdk.hookimpl`` whose names are
below, registered under the ``elt_sdk`` entry-point group::

    [project.entry-points.elt_sdk]
    shipments = "elt_shipments"

Each batch of an object travels **parse -> validate -> map -> write**. The SDK's defaults are a
plugin too (``elt_sdk.defaults``, registered ``trylast``): a dataset plugin implements only the
hooks where it differs, and returns ``None`` for datasets that are not its own so the next
implementation (in the end the default) answers. A cross-cutting plugin (masking, metrics,
another sink) wraps any hook with ``@hookimpl(wrapper=True)``: code before ``yield`` sees the
arguments, the ``yield`` returns the result, and the wrapper returns what callers get.

All hooks are batch-level, so per-record Python work is the exception, not the rule.

Threads: ``elt_parse`` runs on a worker thread, one block ahead of the block the pipeline's own
thread takes through validate, map and write (pyarrow and Arrow kernels release the GIL, so the
two overlap). Calls of one hook never overlap each other and blocks keep their order, but a
parse hook may run while validate/map/write hooks handle the previous block: state a plugin
shares between them needs a lock.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import pluggy
import pyarrow as pa

from elt_sdk import PROJECT

if TYPE_CHECKING:
    from elt_sdk.batch import ParsedBatch, RawBlock, ValidatedBatch
    from elt_sdk.dataset import Dataset
    from elt_sdk.output import ObjectOutput

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def elt_datasets() -> list["Dataset"]:
    """Declare the datasets this plugin provides.

    Called once at load time. A plugin whose declaration raises, or declares an invalid
    dataset, is reported as broken (``elt-sdk plugins``) and unregistered; other plugins load.
    """


@hookspec(firstresult=True)
def elt_parse(dataset: "Dataset", block: "RawBlock") -> "ParsedBatch | None":
    """Decode one block of raw lines into records.

    Framing (JSON array vs JSONL, gzip, byte ranges) happens before this hook: ``block.lines``
    holds one document per line (blank lines are not records), ``block.lineno(i)`` and
    ``block.offset(i)`` locate line ``i``. A plugin parser returns
    ``ParsedBatch(block, rows=[line indices], decoded={index: value})`` and puts lines it cannot
    read in ``rejects`` (``block.reject(i, errors, "parse")``).

    The default is strict JSON (UTF-8, no NaN/Infinity); a bad line becomes a reject at stage
    ``parse`` and never affects its neighbours. Where the dataset's schema allows, it parses the
    block with pyarrow's JSON reader into ``batch.table`` (columnar, one row per
    ``batch.table_lines`` entry) instead of Python values; ``batch.records`` still decodes every
    row on demand, for hooks that want dicts. A parser may leave Python-heavy work for the
    pipeline's thread in ``batch.pending`` (the default leaves decoding the lines its screens set
    aside there); the pipeline calls ``batch.settle()`` before validate, and reading ``records``
    or ``len(batch)`` settles too.
    """


@hookspec(firstresult=True)
def elt_validate(dataset: "Dataset", batch: "ParsedBatch") -> "ValidatedBatch | None":
    """Check records against the dataset's contract and type the valid ones.

    The default's verdicts are fastjsonschema's against ``dataset.json_schema``: a columnar
    batch is checked with vector masks first, and only rows they do not accept go through
    fastjsonschema. Every error of a rejected record is listed (JSON path + message); the valid
    records come back as an Arrow table in ``dataset.bronze_arrow_schema`` (event time parsed to
    UTC timestamps), in line order. A plugin validator may use ``batch.records`` (dicts) and
    ``batch.reject(position, errors, "validate")``.
    """


@hookspec(firstresult=True)
def elt_map(dataset: "Dataset", table: pa.Table) -> pa.Table | None:
    """Turn valid bronze rows into silver rows (Arrow in, Arrow out).

    The default is the identity, unless some plugin implements ``elt_map_record`` for the
    dataset. The result must match ``dataset.arrow_schema``; the SDK checks it.
    """


@hookspec(firstresult=True)
def elt_map_record(dataset: "Dataset", record: dict[str, Any]) -> dict[str, Any] | None:
    """Per-record map, for logic that is easier row by row (slower than ``elt_map``).

    Return the silver row as a dict, or ``None`` when this plugin does not map ``dataset``.
    """


@hookspec(firstresult=True)
def elt_write(dataset: "Dataset", table: pa.Table, output: "ObjectOutput") -> bool | None:
    """Write silver rows. The default appends them to ``output``, which partitions by ``dt``
    and writes Parquet under ``silver/<dataset>/dt=YYYY-MM-DD/`` with deterministic keys.
    Return ``True`` once written."""


@hookspec(firstresult=True)
def elt_fake_records(dataset: "Dataset", rng: random.Random, count: int) -> list[dict[str, Any]] | None:
    """Realistic fake bronze records for ``elt-sdk gen``, the demo and benchmarks.

    The default draws values from the JSON Schema; a dataset plugin returns records with its
    feed's real distributions.
    """
