"""Default map: identity, or the per-record ``elt_map_record`` hook when a plugin provides one."""
from __future__ import annotations

import pluggy
import pyarrow as pa

from elt_sdk import hookimpl
from elt_sdk.dataset import Dataset


class DefaultMap:
    def __init__(self, pm: pluggy.PluginManager):
        self._pm = pm

    @hookimpl(trylast=True)
    def elt_map(self, dataset: Dataset, table: pa.Table) -> pa.Table:
        hook = self._pm.hook.elt_map_record
        if table.num_rows == 0 or not hook.get_hookimpls():
            return table
        rows = table.to_pylist()
        first = hook(dataset=dataset, record=rows[0])
        if first is None:  # no plugin maps this dataset row by row
            return table
        mapped = [first] + [hook(dataset=dataset, record=r) for r in rows[1:]]
        return pa.Table.from_pylist(mapped, schema=dataset.arrow_schema)
