"""Properties of the transform, over records hypothesis derives from each dataset's schema."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import assume, HealthCheck, given, settings
from hypothesis import strategies as st

from elt_sdk.framing import plan_chunks, read_blocks
from elt_sdk.formats import SNIFF_BYTES, sniff
from elt_sdk.testing import lines, reference_verdict, transform_lines

DATASETS = ["shipments", "tracking_events", "invoice_lines"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", DATASETS)
@SETTINGS
@given(data=st.data())
def test_every_line_ends_in_exactly_one_of_silver_or_quarantine(registry, name, data):
    ds = registry.dataset(name)
    batch = data.draw(lines(ds))
    result = transform_lines(registry, ds, batch)
    verdicts = [reference_verdict(ds, line) for line in batch]
    quarantined_lines = sorted(r["line"] for r in result.quarantine)
    assert quarantined_lines == [i for i, ok in enumerate(verdicts, start=1) if not ok]
    assert result.silver.num_rows == sum(verdicts)
    assert result.silver.num_rows + len(result.quarantine) == len(batch)
    assert all(r["errors"] for r in result.quarantine)


@pytest.mark.parametrize("name", DATASETS)
@SETTINGS
@given(data=st.data())
def test_transform_is_deterministic(registry, name, data):
    ds = registry.dataset(name)
    batch = data.draw(lines(ds))
    with tempfile.TemporaryDirectory() as folder:
        first = transform_lines(registry, ds, batch, input_dir=Path(folder))
        second = transform_lines(registry, ds, batch, input_dir=Path(folder))
    assert first.files == second.files  # same keys, same bytes


class _Bytes:
    def __init__(self, data: bytes):
        self.data, self.uri, self.key, self.etag, self.size = data, "mem://x", "x", "e", len(data)
        self.version = None

    def open(self, start: int = 0):
        return io.BytesIO(self.data[start:])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=40),
       st.integers(1, 64), st.integers(1, 50), st.booleans())
def test_byte_range_chunks_cover_every_line_exactly_once(parts, chunk_bytes, block_bytes, trailing_newline):
    body = b"\n".join(b"{" + p for p in parts) + (b"\n" if trailing_newline else b"")
    assume(sniff(body[:SNIFF_BYTES]) == "lines")  # ingest splits only plain JSONL
    src = _Bytes(body)
    def records(blocks):
        return [(b.offset(i), line) for b in blocks for i, line in enumerate(b.lines) if line.strip()]

    whole = records(read_blocks(src, None, block_bytes))
    chunked = records(b for c in plan_chunks(len(body), chunk_bytes)
                      for b in read_blocks(src, c if c.start or len(body) > chunk_bytes else None, block_bytes))
    assert chunked == whole
    assert [line for _, line in whole] == [(b"{" + p).rstrip(b"\r") for p in parts if (b"{" + p).rstrip(b"\r").strip()]
    for offset, line in whole:
        assert body[offset:offset + len(line)] == line


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 70), min_size=1, max_size=12), st.integers(1, 64), st.integers(1, 64), st.booleans())
def test_lines_over_the_limit_are_refused_once_whatever_the_chunks_and_reads(sizes, chunk_bytes, block_bytes,
                                                                               trailing_newline):
    """A line over max_line_bytes is one reject, in exactly one chunk, wherever chunk and read
    boundaries fall (one starting at a chunk's end, one ending the object without a newline)."""
    from elt_sdk.framing import Limits

    body = b"\n".join(b"{" + b"x" * n for n in sizes) + (b"\n" if trailing_newline else b"")
    src, limits = _Bytes(body), Limits(max_line_bytes=20)

    def items(blocks):
        out = []
        for b in blocks:
            out += [("reject", r.offset, r.size) for r in b.rejects]
            out += [("line", b.offset(i), len(line)) for i, line in enumerate(b.lines) if line.strip()]
        return sorted(out, key=lambda x: x[1])

    whole = items(read_blocks(src, None, block_bytes, limits))
    chunked = items(b for c in plan_chunks(len(body), chunk_bytes)
                    for b in read_blocks(src, c if c.start or len(body) > chunk_bytes else None, block_bytes, limits))
    assert chunked == whole
    expected, offset = [], 0
    for n in sizes:
        expected.append(("reject" if n + 1 > 20 else "line", offset, n + 1))
        offset += n + 2
    assert whole == expected
