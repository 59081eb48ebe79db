"""Outcomes the edges must tell apart: an object the pipeline can never read (refuse it now,
with its reason, instead of retrying) versus a fault that a retry may cure (anything else)."""
from __future__ import annotations


class ObjectRefused(ValueError):
    """This object can never be transformed, whatever the retry: a corrupt or truncated gzip
    stream, a decompression bomb, UTF-16 text, an object over the size limits, a pointer to a
    dataset that is not installed. It fails whole, is marked in quarantine with this reason, and
    (in the pipeline) goes to the DLQ at once."""


class BadMessage(ObjectRefused):
    """A queue message that is not a pointer this SDK can read."""


class RowValueError(ValueError):
    """A value of some row that the silver schema or the partitioning cannot hold (the message
    starts with the field's JSON path): the pipeline isolates that row and quarantines it."""


class FakeRecordError(ValueError):
    """A dataset's fake records (``elt_fake_records``: ``gen``, ``bench``, the demo) are not valid
    against its schema, or the SDK's schema-driven default cannot draw valid ones."""
