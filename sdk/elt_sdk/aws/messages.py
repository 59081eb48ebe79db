"""The pointer message ingest sends and transform reads: one per object (or byte-range chunk),
never one per record. Version 2 adds the object version's place in its key's history
(``sequencer``, ``modified_ms``), the key the object stands for (``origin``: a replay copy's
original) and ``force`` (transform even if this version is already committed); version 1
messages still in a queue during an upgrade are read with those left empty."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from elt_sdk.errors import BadMessage
from elt_sdk.formats import Chunk
from elt_sdk.source import ObjectVersion

VERSION = 2
READABLE = (1, 2)

__all__ = ["BadMessage", "ObjectPointer", "VERSION"]


@dataclass(frozen=True)
class ObjectPointer:
    bucket: str
    key: str
    etag: str
    size: int
    dataset: str | None = None
    chunk_index: int = 0
    chunk_start: int = 0
    chunk_end: int = 0
    chunk_count: int = 1
    sequencer: str = ""
    modified_ms: int = 0
    origin: str | None = None
    origin_etag: str = ""
    force: bool = False

    @property
    def chunk(self) -> Chunk | None:
        return Chunk(self.chunk_index, self.chunk_start, self.chunk_end) if self.chunk_count > 1 else None

    @property
    def version(self) -> ObjectVersion:
        """The version of the object this message stands for (a replay copy's: its original's)."""
        return ObjectVersion(self.origin_etag or self.etag, self.sequencer, self.modified_ms)

    @property
    def identity(self) -> str:
        """The bronze key whose rows this object's rows are (a replay copy's original)."""
        return self.origin or self.key

    def to_json(self) -> str:
        return json.dumps({"v": VERSION, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, body: str) -> "ObjectPointer":
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or data.pop("v", None) not in READABLE:
                raise BadMessage(f"not a pointer message of a version this SDK reads ({READABLE}): {body[:200]!r}")
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(data) - known)
            if unknown:
                raise BadMessage(f"pointer message has unknown field(s) {', '.join(unknown)}: {body[:200]!r}")
            return cls(**data)
        except (ValueError, TypeError) as exc:
            if isinstance(exc, BadMessage):
                raise
            raise BadMessage(f"not a pointer message: {exc}: {body[:200]!r}") from None
