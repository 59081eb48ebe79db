"""Where silver and quarantine files go. The core writes through this protocol."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Sink(Protocol):
    """A key/value store of files: a local folder, or an S3 bucket (``aws/s3.py``)."""

    def put_file(self, key: str, path: Path) -> None:
        """Store the local file ``path`` under ``key``, replacing what was there."""


@dataclass
class LocalSink:
    root: Path

    def put_file(self, key: str, path: Path) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(target)  # atomic: a reader never sees half a file
