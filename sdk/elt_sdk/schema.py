"""JSON Schema -> Arrow schema: the one place a dataset's columns are derived.

The validator, the silver Parquet schema, the Glue table and the hypothesis strategies all start
from a dataset's JSON Schema, so a column list is never written twice.
"""
from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")


class SchemaError(ValueError):
    """A JSON Schema construct with no Arrow equivalent (declare ``silver_schema`` instead)."""


def json_types(prop: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The non-null JSON types a property allows, and whether it allows null."""
    declared = prop.get("type")
    if declared is None and "enum" in prop:
        declared = sorted({_json_type_of(v) for v in prop["enum"]})
    if declared is None and "const" in prop:
        declared = _json_type_of(prop["const"])
    if declared is None:
        raise SchemaError("property has no 'type'")
    types = [declared] if isinstance(declared, str) else list(declared)
    nullable = "null" in types
    return [t for t in types if t != "null"], nullable


def _json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise SchemaError(f"enum/const value {value!r} has no scalar type")


def arrow_type(prop: Mapping[str, Any], path: str = "$") -> pa.DataType:
    """Arrow type for one JSON Schema property."""
    try:
        types, _ = json_types(prop)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None
    if types == ["integer", "number"] or types == ["number", "integer"]:
        types = ["number"]
    if len(types) != 1:
        raise SchemaError(f"{path}: a union of types {types} has no single Arrow type")
    kind = types[0]
    if kind == "string":
        fmt = prop.get("format")
        if fmt == "date-time":
            return TIMESTAMP
        if fmt == "date":
            return pa.date32()
        return pa.string()
    if kind == "integer":
        return pa.int64()
    if kind == "number":
        return pa.float64()
    if kind == "boolean":
        return pa.bool_()
    if kind == "array":
        items = prop.get("items")
        if not isinstance(items, Mapping):
            raise SchemaError(f"{path}: an array needs a single 'items' schema")
        return pa.list_(arrow_type(items, f"{path}[]"))
    if kind == "object":
        props = prop.get("properties")
        if not props:
            raise SchemaError(f"{path}: an object needs 'properties' to become a struct")
        return pa.struct(object_fields(prop, path))
    raise SchemaError(f"{path}: unsupported type {kind!r}")


def object_fields(schema: Mapping[str, Any], path: str = "$") -> list[pa.Field]:
    """Arrow fields for an object schema's properties, in declaration order."""
    required = set(schema.get("required", ()))
    fields = []
    for name, prop in schema.get("properties", {}).items():
        typ = arrow_type(prop, f"{path}.{name}")
        _, allows_null = json_types(prop)
        fields.append(pa.field(name, typ, nullable=allows_null or name not in required))
    return fields


def arrow_schema(json_schema: Mapping[str, Any]) -> pa.Schema:
    """The Arrow schema of records valid against ``json_schema`` (a top-level object schema)."""
    if json_schema.get("type") != "object":
        raise SchemaError("$: a dataset's JSON Schema must have type 'object'")
    return pa.schema(object_fields(json_schema))


def transport_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with timestamp/date columns as strings: the shape JSON values arrive in."""
    return pa.schema(
        [pa.field(f.name, _transport_type(f.type), nullable=f.nullable) for f in schema]
    )


def _transport_type(typ: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        return pa.string()
    if pa.types.is_list(typ):
        return pa.list_(_transport_type(typ.value_type))
    if pa.types.is_struct(typ):
        return pa.struct(
            [pa.field(f.name, _transport_type(f.type), f.nullable) for f in typ]
        )
    return typ


def glue_type(typ: pa.DataType) -> str:
    """The Glue/Athena (Hive DDL) type of an Arrow type, for the catalog table of a dataset."""
    if pa.types.is_timestamp(typ):
        return "timestamp"
    if pa.types.is_date(typ):
        return "date"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "string"
    if pa.types.is_int64(typ):
        return "bigint"
    if pa.types.is_integer(typ):
        return "int"
    if pa.types.is_floating(typ):
        return "double"
    if pa.types.is_boolean(typ):
        return "boolean"
    if pa.types.is_list(typ):
        return f"array<{glue_type(typ.value_type)}>"
    if pa.types.is_struct(typ):
        return "struct<" + ",".join(f"{f.name}:{glue_type(f.type)}" for f in typ) + ">"
    raise SchemaError(f"no Glue type for {typ}")
