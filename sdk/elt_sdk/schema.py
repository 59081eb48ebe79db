"""JSON Schema -> silver shape -> Arrow schema: the one place a dataset's columns are derived.

The validator, the silver Parquet schema, the Glue table and the hypothesis strategies all start
from a dataset's JSON Schema, so a column list is never written twice.

A dataset's schema becomes a tree of ``Shape`` nodes (``record_shape``): each position the
schema types (``type``, with ``properties`` for objects and one ``items`` schema for arrays;
``$ref`` followed through the whole document; a type inferred from ``enum``/``const``; a
``[T, "null"]`` union, or its ``anyOf``/``oneOf`` spelling) gets an Arrow type. A position with
no single type (no ``type``, a union of types, a free-form object, an array without one ``items``
schema, the schema ``true``, ``{"type": "null"}``, a recursive ``$ref``) is stored as its JSON text
in a string column, unless the dataset asks for strict typing, where it is refused at load.
Validation keywords (bounds, ``pattern``, ``allOf``/``anyOf``/``oneOf``/``not`` beside a ``type``)
never change a position's type: they are the validator's business.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping
from urllib.parse import quote, unquote, urldefrag, urljoin

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
SCALAR_KINDS = ("string", "integer", "number", "boolean", "timestamp", "date")

# keywords whose value is one subschema / a list of subschemas / a name -> subschema mapping
_ONE = ("additionalItems", "additionalProperties", "contains", "propertyNames", "if", "then", "else", "not")
_LIST = ("allOf", "anyOf", "oneOf")
_MAP = ("properties", "patternProperties", "definitions", "$defs")


# Draft-07 keywords by the JSON types of values they apply to: on a value of any other type
# JSON Schema ignores them, and so does every path here (a keyword never makes a schema fail).
APPLIES_TO: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"), ("integer", "number")),
    **dict.fromkeys(("minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType"), ("string",)),
    **dict.fromkeys(("items", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains"), ("array",)),
    **dict.fromkeys(("properties", "required", "additionalProperties", "patternProperties", "minProperties",
                     "maxProperties", "dependencies", "propertyNames"), ("object",)),
}
ANY_TYPE_KEYWORDS = ("type", "enum", "const", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref")
ANNOTATIONS = ("title", "description", "default", "examples", "$comment", "readOnly", "writeOnly", "$id", "$schema",
               "definitions", "$defs")
"""Keywords that never decide a verdict (``default`` is inserted only when a dataset opts in)."""
KIND_JSON_TYPE = {"string": "string", "timestamp": "string", "date": "string", "integer": "integer",
                  "number": "number", "boolean": "boolean", "struct": "object", "list": "array", "json": None}


class SchemaError(ValueError):
    """A JSON Schema construct with no Arrow equivalent (declare ``silver_schema`` instead)."""


@dataclass(frozen=True)
class Shape:
    """What one position of a valid record holds in silver.

    ``kind``: string, integer, number, boolean, timestamp, date (scalars), struct, list, or json
    (the value's JSON text in a string column). ``schema`` is the resolved subschema of the
    position ($ref followed) and ``pointer`` its JSON pointer in the dataset's schema.
    """

    kind: str
    nullable: bool
    path: str
    schema: Any = field(compare=False, repr=False)
    pointer: str = field(default="#", compare=False)
    fields: tuple["ShapeField", ...] = ()
    item: "Shape | None" = None

    @property
    def arrow_type(self) -> pa.DataType:
        if self.kind == "struct":
            return pa.struct([f.arrow_field for f in self.fields])
        if self.kind == "list":
            assert self.item is not None
            return pa.list_(self.item.arrow_type)
        return _SCALAR_ARROW[self.kind]

    def field(self, name: str) -> "ShapeField":
        return next(f for f in self.fields if f.name == name)


@dataclass(frozen=True)
class ShapeField:
    name: str
    shape: Shape
    required: bool

    @property
    def arrow_field(self) -> pa.Field:
        return pa.field(self.name, self.shape.arrow_type, nullable=self.shape.nullable or not self.required)


_SCALAR_ARROW = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(),
                 "timestamp": TIMESTAMP, "date": pa.date32(), "json": pa.string()}


def json_types(prop: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The non-null JSON types a property allows, and whether it allows null."""
    if not isinstance(prop, Mapping):
        raise SchemaError(f"the schema {prop!r} has no 'type'")
    declared = prop.get("type")
    if declared is None and "enum" in prop and isinstance(prop["enum"], list):
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


# -- $ref ----------------------------------------------------------------------------------------

class Resolver:
    """Local ``$ref`` resolution against a whole schema document: JSON pointers (``#/...``) and
    subschemas named by ``$id``. Remote documents are never fetched."""

    def __init__(self, root: Any):
        self.root = root
        self.base = root.get("$id", "") if isinstance(root, Mapping) and isinstance(root.get("$id"), str) else ""
        self.ids: dict[str, tuple[Any, str]] = {}
        self._index(root, self.base, "#")

    def _index(self, node: Any, base: str, pointer: str) -> None:
        if not isinstance(node, Mapping):
            return
        if isinstance(node.get("$id"), str) and "$ref" not in node:
            base = urljoin(base, node["$id"])
            self.ids[base.rstrip("#")] = (node, pointer)
        for key, sub, sub_pointer in subschemas(node, pointer):
            self._index(sub, base, sub_pointer)

    def resolve(self, ref: str, base: str = "") -> tuple[Any, str]:
        """The subschema ``ref`` names and its JSON pointer; raises SchemaError if it is not in
        this document."""
        if not isinstance(ref, str):
            raise SchemaError(f"$ref must be a string, got {ref!r}")
        target = urljoin(base or self.base, ref)
        document, fragment = urldefrag(target)
        if document and document.rstrip("#") not in self.ids and document != self.base.rstrip("#"):
            raise SchemaError(f"$ref {ref!r} points outside the dataset's schema (remote schemas are never fetched)")
        node, pointer = self.ids.get(document.rstrip("#"), (self.root, "#")) if document else (self.root, "#")
        if fragment and not fragment.startswith("/"):
            raise SchemaError(f"$ref {ref!r}: plain-name fragments are not supported (use a JSON pointer)")
        for token in fragment.split("/")[1:] if fragment else []:
            part = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                raise SchemaError(f"$ref {ref!r} resolves to nothing in the dataset's schema")
            pointer += "/" + pointer_token(part)
        return node, pointer

    def follow(self, schema: Any, pointer: str) -> tuple[Any, str]:
        """``schema`` with its ``$ref`` chain followed (draft-07: siblings of ``$ref`` are ignored)."""
        seen = set()
        while isinstance(schema, Mapping) and "$ref" in schema:
            if pointer in seen:
                raise SchemaError(f"$ref cycle at {pointer}")
            seen.add(pointer)
            schema, pointer = self.resolve(schema["$ref"])
        return schema, pointer


def subschemas(schema: Any, pointer: str = "#") -> Iterator[tuple[str, Any, str]]:
    """Every direct subschema of ``schema``: (keyword, subschema, its JSON pointer). Values of
    ``enum``, ``const``, ``default`` and ``examples`` are data, not schemas, and are skipped."""
    if not isinstance(schema, Mapping):
        return
    for key in _ONE:
        if key in schema and isinstance(schema[key], (Mapping, bool)):
            yield key, schema[key], f"{pointer}/{key}"
    for key in _LIST:
        if isinstance(schema.get(key), list):
            for i, sub in enumerate(schema[key]):
                yield key, sub, f"{pointer}/{key}/{i}"
    for key in _MAP:
        if isinstance(schema.get(key), Mapping):
            for name, sub in schema[key].items():
                yield key, sub, f"{pointer}/{key}/{pointer_token(name)}"
    items = schema.get("items")
    if isinstance(items, (Mapping, bool)):
        yield "items", items, f"{pointer}/items"
    elif isinstance(items, list):
        for i, sub in enumerate(items):
            yield "items", sub, f"{pointer}/items/{i}"
    deps = schema.get("dependencies")
    if isinstance(deps, Mapping):
        for name, sub in deps.items():
            if isinstance(sub, (Mapping, bool)):
                yield "dependencies", sub, f"{pointer}/dependencies/{pointer_token(name)}"


def walk(schema: Any, pointer: str = "#") -> Iterator[tuple[Any, str]]:
    """``schema`` and every subschema below it, with their JSON pointers."""
    yield schema, pointer
    for _, sub, sub_pointer in subschemas(schema, pointer):
        yield from walk(sub, sub_pointer)


def pointer_token(name: str) -> str:
    """One JSON pointer token, percent-encoded for a URI fragment (fastjsonschema unquotes them)."""
    return quote(str(name).replace("~", "~0").replace("/", "~1"), safe="")


def pointer_path(pointer: str) -> str:
    """A JSON pointer of the schema as a readable path (``#/properties/a`` -> ``$.properties.a``)."""
    parts = [unquote(p).replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("#").split("/")[1:]]
    return "$" + "".join(f".{p}" for p in parts)


# -- shapes --------------------------------------------------------------------------------------

class _Shaper:
    def __init__(self, root: Any, strict: bool):
        self.resolver = Resolver(root)
        self.strict = strict
        self.active: list[str] = []  # pointers being shaped: a $ref back to one is recursion

    def untyped(self, path: str, why: str, schema: Any, pointer: str, nullable: bool = True) -> Shape:
        if self.strict:
            raise SchemaError(f"{path}: {why} (the dataset asks for strict typing; without it, the value "
                              "would be stored as its JSON text)")
        return Shape("json", nullable, path, schema, pointer)

    def shape(self, schema: Any, path: str, pointer: str) -> Shape:
        if isinstance(schema, Mapping) and "$ref" in schema:
            target, target_pointer = self.resolver.resolve(schema["$ref"])
            if target_pointer in self.active:
                return self.untyped(path, f"$ref {schema['$ref']!r} is recursive: no finite Arrow type", target, target_pointer)
            return self.shape(target, path, target_pointer)
        if schema is True:
            return self.untyped(path, "the schema true allows any JSON value: no single Arrow type", schema, pointer)
        if isinstance(schema, Mapping) and not _typing_keywords(schema):
            return self.untyped(path, "property has no 'type'", schema, pointer)
        if schema is False:
            raise SchemaError(f"{path}: the schema false allows no value")
        if not isinstance(schema, Mapping):
            raise SchemaError(f"{path}: a schema must be an object or a boolean, got {schema!r}")
        self.active.append(pointer)
        try:
            return self._typed(schema, path, pointer)
        finally:
            self.active.pop()

    def _typed(self, schema: Mapping[str, Any], path: str, pointer: str) -> Shape:
        if "type" not in schema:
            for key in ("anyOf", "oneOf"):
                union = self._nullable_union(schema.get(key), path, f"{pointer}/{key}")
                if union is not None:
                    return union
            if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
                return self.shape(schema["allOf"][0], path, f"{pointer}/allOf/0")
        try:
            types, nullable = json_types(schema)
        except SchemaError as exc:
            return self.untyped(path, str(exc), schema, pointer)
        if not all(isinstance(t, str) for t in types):
            raise SchemaError(f"{path}: 'type' must be a string or a list of strings")
        if set(types) == {"integer", "number"}:
            types = ["number"]
        if not types:
            return self.untyped(path, "{\"type\": \"null\"} holds no value but null: no column type", schema, pointer)
        if len(types) != 1:
            return self.untyped(path, f"a union of types {types} has no single Arrow type", schema, pointer, nullable)
        kind = types[0]
        if kind == "string":
            fmt = schema.get("format")
            kind = "timestamp" if fmt == "date-time" else "date" if fmt == "date" else "string"
            return Shape(kind, nullable, path, schema, pointer)
        if kind in ("integer", "number", "boolean"):
            return Shape(kind, nullable, path, schema, pointer)
        if kind == "array":
            items = schema.get("items", True)
            if not isinstance(items, (Mapping, bool)) or items is True:
                return self.untyped(path, "an array needs a single 'items' schema", schema, pointer, nullable)
            if items is False:
                return self.untyped(path, "'items': false allows only empty arrays", schema, pointer, nullable)
            item = self.shape(items, f"{path}[]", f"{pointer}/items")
            if item.kind == "json":  # elements of no single type: the whole array is JSON text
                return self.untyped(path, f"{item.path}: elements have no single Arrow type", schema, pointer, nullable)
            return Shape("list", nullable, path, schema, pointer, item=item)
        if kind == "object":
            props = schema.get("properties")
            if not isinstance(props, Mapping) or not props:
                return self.untyped(path, "an object needs 'properties' to become a struct", schema, pointer, nullable)
            return Shape("struct", nullable, path, schema, pointer, fields=self.fields(schema, path, pointer))
        raise SchemaError(f"{path}: unsupported type {kind!r}")

    def _nullable_union(self, branches: Any, path: str, pointer: str) -> Shape | None:
        """``anyOf``/``oneOf`` of one typed schema and ``{"type": "null"}`` (what generators emit
        for an optional field): that schema's shape, nullable."""
        if not isinstance(branches, list) or not branches:
            return None
        typed, nullable = [], False
        for i, branch in enumerate(branches):
            resolved, _ = self.resolver.follow(branch, f"{pointer}/{i}")
            if isinstance(resolved, Mapping) and resolved.get("type") == "null":
                nullable = True
            else:
                typed.append((branch, f"{pointer}/{i}"))
        if len(typed) != 1:
            return None
        shape = self.shape(typed[0][0], path, typed[0][1])
        if shape.kind == "json":
            return shape
        return Shape(shape.kind, shape.nullable or nullable, shape.path, shape.schema, shape.pointer, shape.fields, shape.item)

    def fields(self, schema: Mapping[str, Any], path: str, pointer: str) -> tuple[ShapeField, ...]:
        required = schema.get("required", [])
        if not isinstance(required, (list, tuple)):
            raise SchemaError(f"{path}: 'required' must be a list of names")
        out = []
        for name, prop in schema.get("properties", {}).items():
            sub_path = f"{path}.{name}"
            if prop is False or (isinstance(prop, Mapping) and "$ref" in prop
                                 and self.resolver.follow(prop, pointer)[0] is False):
                if name in required:
                    raise SchemaError(f"{sub_path}: required, but its schema (false) allows no value: no record is valid")
                continue  # the field may never be present: no column
            shape = self.shape(prop, sub_path, f"{pointer}/properties/{pointer_token(name)}")
            out.append(ShapeField(name, shape, name in required))
        return tuple(out)


def _typing_keywords(schema: Mapping[str, Any]) -> bool:
    return any(k in schema for k in ("type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf"))


def record_shape(json_schema: Any, strict: bool = False) -> Shape:
    """The shape of a record valid against a dataset's schema (a struct at the root)."""
    if isinstance(json_schema, bool):
        raise SchemaError(f"$: a dataset's JSON Schema must be an object schema with properties, got {json_schema}")
    if not isinstance(json_schema, Mapping):
        raise SchemaError("$: a dataset's JSON Schema must be a JSON object")
    shaper = _Shaper(json_schema, strict)
    root, pointer = shaper.resolver.follow(json_schema, "#")
    if not isinstance(root, Mapping) or root.get("type") != "object":
        raise SchemaError("$: a dataset's JSON Schema must have type 'object'")
    shaper.active.append(pointer)
    return Shape("struct", False, "$", root, pointer, fields=shaper.fields(root, "$", pointer))


def arrow_type(prop: Any, path: str = "$", strict: bool = True) -> pa.DataType:
    """Arrow type for one JSON Schema property (a schema without ``$ref`` to elsewhere)."""
    return _Shaper(prop, strict).shape(prop, path, "#").arrow_type


def arrow_schema(json_schema: Mapping[str, Any], strict: bool = False) -> pa.Schema:
    """The Arrow schema of records valid against ``json_schema`` (a top-level object schema)."""
    return pa.schema([f.arrow_field for f in record_shape(json_schema, strict).fields])


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
