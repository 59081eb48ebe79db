"""The pointer message ingest sends and transform reads: one per object (or byte-range chunk),
never one per record."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from elt_sdk.formats import Chunk

VERSION = 1


class BadMessage(ValueError):
    pass


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

    @property
    def chunk(self) -> Chunk | None:
        return Chunk(self.chunk_index, self.chunk_start, self.chunk_end) if self.chunk_count > 1 else None

    def to_json(self) -> str:
        return json.dumps({"v": VERSION, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, body: str) -> "ObjectPointer":
        try:
            data = json.loads(body)
            if data.pop("v", None) != VERSION:
                raise BadMessage(f"unsupported pointer message version in {body[:200]!r}")
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise BadMessage(f"not a pointer message: {exc}: {body[:200]!r}") from None
