"""Arrow's memory pool for transforms: jemalloc, where the pyarrow build has it.

pyarrow's default pool on Linux (mimalloc) keeps freed blocks cached per thread, and a transform
allocates on five (the pipeline, the parse-ahead worker, the Parquet writer, pyarrow's own
pool). Transforming one 1.16 GB JSONL object peaked at 264 MiB with mimalloc and at 198 MiB with
jemalloc, at the same speed. A process that chose a pool itself (``ARROW_DEFAULT_MEMORY_POOL``,
or ``pyarrow.set_memory_pool`` to anything but mimalloc) keeps its choice.
"""
from __future__ import annotations

import os

import pyarrow as pa

_chosen = False


def use_transform_pool() -> str:
    """Switch the process's default Arrow pool to jemalloc once; returns the backend in use."""
    global _chosen
    if not _chosen:
        _chosen = True
        if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL") and pa.default_memory_pool().backend_name == "mimalloc":
            try:
                pa.set_memory_pool(pa.jemalloc_memory_pool())
            except (NotImplementedError, pa.ArrowNotImplementedError):  # a build without jemalloc
                pass
    return pa.default_memory_pool().backend_name
