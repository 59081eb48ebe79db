"""Default map: identity, or the per-record ``elt_map_record`` hook when a plugin provides one."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from elt_sdk import hookimpl
from elt_sdk.dataset import Dataset

if TYPE_CHECKING:
    from elt_sdk.plugins import Registry


class DefaultMap:
    """Needs the registry (bound once it is built) to call ``elt_map_record`` for the dataset's
    own plugins only."""

    def __init__(self) -> None:
        self._registry: "Registry | None" = None

    def bind(self, registry: "Registry") -> None:
        self._registry = registry

    @hookimpl(trylast=True)
    def elt_map(self, dataset: Dataset, table: pa.Table) -> pa.Table:
        if table.num_rows == 0 or self._registry is None:
            return table
        hook = self._registry.hooks(dataset).elt_map_record
        if not hook.get_hookimpls():
            return table
        rows = table.to_pylist()
        first = hook(dataset=dataset, record=rows[0])
        if first is None:  # no plugin maps this dataset row by row
            return table
        mapped = [first] + [hook(dataset=dataset, record=r) for r in rows[1:]]
        return pa.Table.from_pylist(mapped, schema=dataset.arrow_schema)
