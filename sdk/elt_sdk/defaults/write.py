"""Default write: partitioned Parquet through the object's output (deterministic keys)."""
from __future__ import annotations

import pyarrow as pa

from elt_sdk import hookimpl
from elt_sdk.dataset import Dataset
from elt_sdk.output import ObjectOutput


@hookimpl(trylast=True)
def elt_write(dataset: Dataset, table: pa.Table, output: ObjectOutput) -> bool:
    output.write_silver(dataset, table)
    return True
