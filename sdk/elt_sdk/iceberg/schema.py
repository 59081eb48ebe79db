"""A table's schema from its silver files, and how it may change.

A table is created from the first silver file the committer sees: the plugin's silver schema, then
``_elt_source`` and ``_elt_version``, partitioned by ``day(<event time>)`` (the Parquet schema
metadata ``elt.event_time`` names the column). Files are written without Iceberg field ids and
read through the table's name mapping (``schema.name-mapping.default``), which every change below
keeps up to date.

When a plugin release changes its silver schema, the next commit evolves the table, in the same
transaction as the rows: a new field becomes an optional column (rows committed before read null),
a required column that the plugin now allows to be null is relaxed to optional, a type Iceberg can
promote (int to long, float to double, a wider decimal) is promoted. Anything else would make rows
unreadable or wrong and is refused (``SchemaRefused``), naming the field and the way forward: a
type changed to one Iceberg cannot promote to, or a required column the plugin no longer writes.
"""
from __future__ import annotations

import pyarrow as pa
from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.transforms import DayTransform

from elt_sdk import layout
from elt_sdk.commit import EVENT_TIME_META

PARTITION_FIELD_ID = 1000


class SchemaRefused(ValueError):
    """A silver schema the table cannot take; the message names the field and the way forward."""


def event_time_column(arrow: pa.Schema) -> str:
    """The event-time column a silver file names in its schema metadata."""
    value = (arrow.metadata or {}).get(EVENT_TIME_META)
    if not value:
        raise SchemaRefused("the silver file does not name its event-time column (Parquet schema metadata "
                            f"{EVENT_TIME_META.decode()}): was it written by an elt-sdk transform with silver_format = iceberg?")
    return value.decode()


def _plain(arrow: pa.Schema) -> pa.Schema:
    return pa.schema([f.remove_metadata() for f in arrow])


def new_table(arrow: pa.Schema) -> tuple[Schema, PartitionSpec]:
    """The schema (fresh field ids) and day partition spec of a table first made from ``arrow``."""
    schema = assign_fresh_schema_ids(_pyarrow_to_schema_without_ids(_plain(arrow)))
    source = schema.find_field(event_time_column(arrow))
    spec = PartitionSpec(PartitionField(source_id=source.field_id, field_id=PARTITION_FIELD_ID, transform=DayTransform(),
                                        name=layout.ICEBERG_PARTITION))
    return schema, spec


def required_names(schema: Schema) -> set[str]:
    """Full names (``a.b``) of the schema's required fields whose parents are all required too."""
    out = set()
    for name, field_id in schema._name_to_id.items():  # noqa: SLF001 - full names, as pyiceberg indexes them
        parts = name.split(".")
        if all(schema.find_field(".".join(parts[:i + 1])).required for i in range(len(parts))):
            out.add(name)
    return out


def check(dataset: str, table_schema: Schema, arrow: pa.Schema) -> Schema:
    """The Iceberg schema to union into the table for files of ``arrow`` (new fields optional),
    or ``SchemaRefused`` for a required column the files no longer have."""
    incoming = _pyarrow_to_schema_without_ids(_plain(arrow))
    have = set(incoming._name_to_id)  # noqa: SLF001
    dropped = sorted(n for n in required_names(table_schema) if n not in have)
    if dropped:
        name = dropped[0]
        raise SchemaRefused(
            f"{dataset}: field {name!r} is a required column of the Iceberg table, and the plugin's silver schema "
            f"no longer has it: rows without it cannot be committed. Way forward: keep {name!r} in the silver schema; "
            "to stop requiring it, make it nullable there (the next commit relaxes the column to optional)")
    known = set(table_schema._name_to_id)  # noqa: SLF001
    fields = []
    for f in arrow:  # a field the table does not have yet is added as optional: earlier rows have no value
        fields.append(f if f.name in known or f.nullable else f.with_nullable(True))
    return _pyarrow_to_schema_without_ids(_plain(pa.schema(fields)))


def evolve(dataset: str, update: "object", table_schema: Schema, arrow: pa.Schema) -> None:
    """Union ``arrow`` into the table through ``update`` (an ``UpdateSchema``), or SchemaRefused."""
    incoming = check(dataset, table_schema, arrow)
    try:
        update.union_by_name(incoming)  # type: ignore[attr-defined]
    except Exception as exc:  # pyiceberg's ValidationError/ValueError name the column
        text = str(exc)
        name = text.split(":")[1].strip() if text.startswith("Cannot change column type:") else "?"
        raise SchemaRefused(
            f"{dataset}: field {name!r}: {text}. Iceberg changes a column's type only to a wider one (int to long, "
            "float to double, a wider decimal). Way forward: give the new type a new field name in the plugin's "
            f"silver schema (keep {name!r} as it was, or drop it if it is optional), or start a new table (a new "
            "dataset name; or drop this table in the catalog and replay bronze)") from None


def differs(table_schema: Schema, arrow: pa.Schema) -> bool:
    """Does a silver file of ``arrow`` need a change of the table's schema?"""
    try:
        incoming = assign_fresh_schema_ids(check("?", table_schema, arrow))  # ids, so names find their fields
    except SchemaRefused:
        return True
    for name in incoming._name_to_id:  # noqa: SLF001
        try:
            mine, theirs = table_schema.find_field(name), incoming.find_field(name)
        except ValueError:
            return True
        if mine.field_type.is_primitive and mine.field_type != theirs.field_type:
            return True
        if mine.required and not theirs.required:
            return True
    return False
