"""Totals over many objects, as the CLI, the local runtime and the handlers report them."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from elt_sdk.commit import COMMITTED
from elt_sdk.pipeline import DatasetCounts, ObjectReport


@dataclass
class RunSummary:
    objects: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    datasets: dict[str, DatasetCounts] = field(default_factory=dict)
    partitions: set[tuple[str, str]] = field(default_factory=set)
    bytes_read: int = 0
    not_landed: dict[str, int] = field(default_factory=dict)
    """Objects whose rows did not land, by outcome (superseded by a newer version, already committed ...)."""

    def add(self, report: ObjectReport) -> None:
        self.objects += 1
        self.bytes_read += report.bytes_read
        if report.outcome != COMMITTED:
            self.not_landed[report.outcome] = self.not_landed.get(report.outcome, 0) + 1
            return
        for name, counts in report.counts.items():
            self.datasets.setdefault(name, DatasetCounts()).add(counts)
        self.partitions.update((p.dataset, p.dt) for p in report.partitions)

    def fail(self, uri: str, error: BaseException | str) -> None:
        self.failed.append({"source": uri, "error": error if isinstance(error, str) else f"{type(error).__name__}: {error}"})

    def totals(self) -> DatasetCounts:
        return DatasetCounts.total(self.datasets.values())

    def rows(self) -> list[tuple[Any, ...]]:
        rows = [(n, c.objects, c.records_in, c.written, c.quarantined) for n, c in sorted(self.datasets.items())]
        t = self.totals()
        rows.append(("TOTAL", self.objects, t.records_in, t.written, t.quarantined))
        return rows

    def to_json(self) -> dict[str, Any]:
        t = self.totals()
        return {
            "objects": self.objects,
            "records_in": t.records_in,
            "written": t.written,
            "quarantined": t.quarantined,
            "failed": self.failed,
            "not_landed": self.not_landed,
            "datasets": {n: asdict(c) for n, c in sorted(self.datasets.items())},
            "partitions": sorted(f"{d}/dt={dt}" for d, dt in self.partitions),
        }
