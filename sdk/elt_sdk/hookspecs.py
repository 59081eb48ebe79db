"""The hook contract between the SDK and its plugins (tested sentence by sentence in
``tests/test_hook_contract.py``).

A plugin is any module or object with functions marked ``@elt_sdk.hookimpl`` whose names are
below, registered under the ``elt_sdk`` entry-point group::

    [project.entry-points.elt_sdk]
    shipments = "elt_shipments"

**Who is called for what.** A plugin that declares datasets (``elt_datasets``) is a *dataset
plugin*: its other hooks are called only for its own datasets, so it needs no "is this my
dataset?" test (one that still returns ``None`` for other datasets keeps working). A plugin
that declares no dataset is *cross-cutting*: its hooks are called for every dataset, typically
as wrappers (``@hookimpl(wrapper=True)``: code before ``yield`` sees the arguments, the ``yield``
returns the inner result, the wrapper returns what callers get). The SDK's defaults are a plugin
too (``elt_sdk.defaults``, ``trylast``), so a dataset plugin implements only the hooks where it
differs. Hooks other than ``elt_datasets`` are ``firstresult``: the first non-``None`` answer wins.

**Each batch of an object travels parse -> validate -> map -> write**, all batch-level (Arrow),
so per-record Python work is the exception. An object under no dataset's bronze prefix is routed
record by record (by its ``record_type``): its lines are decoded by the SDK's strict JSON parser,
*not* by ``elt_parse``, and each dataset's records then go through validate -> map -> write.

**Threads.** Hooks may be called from several threads at once: the local runtime's pollers (and
a Lambda container's SDK, if an embedding application uses threads) transform several objects in
one process with one registry. Within one object, blocks keep their order, and ``elt_parse`` of
the next block runs on a worker thread while validate, map and write handle this one. A plugin
that keeps state between calls needs a lock.

**Errors.** A hook that raises is never silently ignored:

- ``elt_validate`` or ``elt_map`` raising: the SDK halves the batch until the rows that make it
  raise stand alone, and quarantines each at stage ``validate`` or ``map`` with the exception's
  type and message; the other rows go on. The same happens to rows whose mapped values do not
  cast to the silver schema (``silver_schema`` / derived) or whose event time has no UTC date
  in years 1-9999 (stage ``write``).
- ``elt_map`` returning a table without the silver schema's columns (or with extra ones): the
  object fails (a plugin bug: nothing of it lands, it is retried, then dead-lettered).
- ``elt_parse`` raising, or ``elt_write`` raising anything but the ``RowValueError`` that
  ``output.write_silver`` raises (before it appends anything) for a value with no partition: the
  object fails (its attempt leaves nothing in silver; it is retried). A wrapper's own
  ``ValueError`` fails the object too: rows the inner write appended are never written twice.
  (A write hook that appends through ``write_silver`` more than once per call must let only its
  first call raise ``RowValueError``: the batch is then split and written again.)
- ``elt_datasets`` raising or declaring an invalid dataset: the plugin is reported broken
  (``elt-sdk plugins``) and not loaded; other plugins load.
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

    Called once per plugin at load time, on that plugin alone (wrappers of other plugins do not
    run around it), so a failure is attributed to the plugin that raised. A plugin whose
    declaration raises, or declares an invalid dataset, is reported as broken and unregistered;
    a dataset declared by two plugins is refused in both.
    """


@hookspec(firstresult=True)
def elt_parse(dataset: "Dataset", block: "RawBlock") -> "ParsedBatch | None":
    """Decode one block of raw lines into records.

    Framing (JSON arrays and documents, gzip, byte ranges, size limits) happens before this hook:
    ``block.lines`` holds one document per line (blank lines are not records), ``block.lineno(i)``
    and ``block.offset(i)`` locate line ``i``. A plugin parser returns
    ``ParsedBatch(block, rows=[line indices], decoded={index: value})`` and puts lines it cannot
    read in ``rejects`` (``block.reject(i, errors, "parse")``).

    The default is strict JSON (UTF-8, no NaN/Infinity, no duplicate keys); a bad line becomes a
    reject at stage ``parse`` and never affects its neighbours. Where the dataset's schema
    allows, the default parses the block with pyarrow's JSON reader; ``batch.records`` decodes
    every row on demand for hooks that want Python values, and ``batch.table`` holds all rows as
    one Arrow table when the columnar parse read every one of them.
    """


@hookspec(firstresult=True)
def elt_validate(dataset: "Dataset", batch: "ParsedBatch") -> "ValidatedBatch | None":
    """Check records against the dataset's contract and type the valid ones.

    The default's verdicts are JSON Schema's (draft-07, ``pattern`` with ECMA-262 meaning)
    against ``dataset.json_schema``; every error of a rejected record is listed (JSON path +
    message). Valid records come back as an Arrow table in ``dataset.bronze_arrow_schema``
    (event time parsed to UTC timestamps), in line order, with ``lines`` (each row's line). A
    plugin validator may use ``batch.records`` and ``batch.reject(position, errors, "validate")``.
    """


@hookspec(firstresult=True)
def elt_map(dataset: "Dataset", table: pa.Table) -> pa.Table | None:
    """Turn valid bronze rows into silver rows (Arrow in, Arrow out).

    The default is the identity, unless a plugin implements ``elt_map_record`` for the dataset.
    The result must have ``dataset.arrow_schema``'s columns; the SDK casts and checks it.
    ``elt_sdk.kernels`` calls Arrow compute kernels without ``pyarrow.compute``'s import cost.
    """


@hookspec(firstresult=True)
def elt_map_record(dataset: "Dataset", record: dict[str, Any]) -> dict[str, Any] | None:
    """Per-record map, for logic that is easier row by row (slower than ``elt_map``): return
    the silver row as a dict. Called only when no ``elt_map`` of the dataset's own answered."""


@hookspec(firstresult=True)
def elt_write(dataset: "Dataset", table: pa.Table, output: "ObjectOutput") -> bool | None:
    """Write silver rows. The default appends them to ``output`` (``output.write_silver``),
    which partitions by ``dt`` and writes Parquet set aside until the object's commit. The
    return value is not used (kept for plugins written against 0.1); raise to fail the object.
    A wrapper sees every batch of every dataset (a second sink, a counter)."""


@hookspec(firstresult=True)
def elt_fake_records(dataset: "Dataset", rng: random.Random, count: int) -> list[dict[str, Any]] | None:
    """Realistic fake bronze records for ``elt-sdk gen``, the demo and benchmarks.

    The default draws values from the JSON Schema and keeps only records the dataset's validator
    accepts; a dataset plugin returns records with its feed's real distributions. They must be
    valid against the dataset's schema: ``gen`` counts them as valid (and stops with the reason,
    ``FakeRecordError``, at one of the first 5,000 that is not), and ``--invalid-rate`` breaks copies of them one
    constraint at a time, at any depth (``elt_sdk.mutations``), counting each as schema-invalid.
    The standard suite draws its records from the schema itself, not from this hook.
    """
