"""Quarantine envelopes: one JSON line per record that did not reach silver, with enough to
understand, fix and replay it (where it came from, which plugin refused it, every error, the raw
line or a bounded sample of it)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from elt_sdk.batch import Reject
    from elt_sdk.source import SourceRef

_encode = json.JSONEncoder(check_circular=False).encode


def envelope_lines(rejects: "list[Reject]", source: "SourceRef", dataset: str, plugin: str, version: str) -> Iterator[str]:
    """Quarantine JSONL lines for ``rejects``; the fields every reject of an object shares are
    serialized once."""
    head = _encode(shared_fields(source, dataset, plugin, version))[:-1] + ", "
    for reject in rejects:
        yield head + _encode(reject.own_fields())[1:] + "\n"


def shared_fields(source: "SourceRef", dataset: str, plugin: str, version: str) -> dict[str, Any]:
    return {"dataset": dataset, "plugin": plugin, "plugin_version": version, "source": source.uri,
            "etag": source.etag, "chunk": source.chunk}
