"""The dataset contract: what a plugin declares, and what the SDK derives from it."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any, Callable, Mapping

import pyarrow as pa

from elt_sdk import schema as schema_mod

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class DatasetError(ValueError):
    """A dataset declaration that cannot work; the message says which part and why."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset as a plugin declares it through ``elt_datasets``.

    Only ``name`` and ``json_schema`` are required; everything else has the default a
    bronze -> silver pipeline needs. ``silver_schema`` is declared only when the plugin's map
    changes the shape of a record; otherwise it is derived from ``json_schema``.

    ``apply_defaults``: insert a property's ``default`` into records that lack it (JSON Schema's
    ``default`` is an annotation, so by default records reach silver as sent).
    ``strict_types``: refuse the schema at load where a property has no single Arrow type,
    instead of storing its value as JSON text in a string column.
    """

    name: str
    json_schema: Mapping[str, Any]
    version: str = "1"
    event_time_field: str = "event_time"
    prefix: str | None = None
    silver_schema: pa.Schema | None = None
    discriminator: str = "record_type"
    discriminator_value: str | None = None
    quality_rules: tuple[Mapping[str, Any], ...] = ()
    description: str = ""
    apply_defaults: bool = False
    strict_types: bool = False
    plugin: str = field(default="", compare=False)
    bronze_root: str = field(default="bronze/", compare=False)
    """The pipeline's bronze prefix (setting ``bronze_prefix``), given by the registry."""

    @property
    def bronze_prefix(self) -> str:
        """Bronze keys under this prefix belong to the dataset: ``<bronze_prefix><name>/``, or the
        ``prefix`` the plugin declared (taken as given, from the bucket's root)."""
        return self.prefix if self.prefix is not None else f"{self.bronze_root}{self.name}/"

    @property
    def route_value(self) -> str:
        """The discriminator value that routes a record of a mixed object here."""
        return self.discriminator_value or self.name

    @cached_property
    def record_shape(self) -> schema_mod.Shape:
        """What each position of a valid record holds in silver (``schema.record_shape``)."""
        return schema_mod.record_shape(self.json_schema, strict=self.strict_types)

    @cached_property
    def bronze_arrow_schema(self) -> pa.Schema:
        """Typed shape of a valid bronze record (timestamps parsed)."""
        return pa.schema([f.arrow_field for f in self.record_shape.fields])

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        """Shape of a silver row: declared, or the bronze shape when the map keeps it."""
        return self.silver_schema if self.silver_schema is not None else self.bronze_arrow_schema

    @cached_property
    def record_converter(self) -> Callable[[dict], tuple]:
        """A valid record -> its silver column values (``values.record_converter``)."""
        from elt_sdk.values import record_converter

        return record_converter(self.record_shape)

    @cached_property
    def validator(self) -> Callable[[Any], Any]:
        """The compiled validator for one bronze record (fastjsonschema, with JSON Schema's
        meaning: see ``validator.py``). It inserts defaults only when ``apply_defaults``."""
        from elt_sdk.validator import compile_validator

        return compile_validator(self.json_schema, apply_defaults=self.apply_defaults)

    @cached_property
    def property_validators(self) -> dict[str, Callable[[Any], Any]]:
        """One validator per top-level property, so a rejected record lists every error; each
        resolves ``$ref`` against the whole schema."""
        from elt_sdk.validator import compile_validator

        root = self.record_shape.schema
        return {
            name: compile_validator(self.json_schema, ref=f"{self.record_shape.pointer}/properties/{schema_mod.pointer_token(name)}")
            for name in root.get("properties", {})
        }

    @classmethod
    def from_package(cls, package: str, name: str, **kwargs: Any) -> "Dataset":
        """A dataset whose ``schema.json`` (and ``rules.json``, if present) ship in ``package``."""
        rules = load_json(package, "rules.json") if resources.files(package).joinpath("rules.json").is_file() else []
        return cls(name=name, json_schema=load_json(package, "schema.json"), quality_rules=tuple(rules), **kwargs)

    def with_plugin(self, plugin: str, bronze_root: str | None = None) -> "Dataset":
        """A copy that knows which plugin declared it (and the pipeline's bronze prefix)."""
        clone = Dataset(**{f: getattr(self, f) for f in self.__dataclass_fields__})
        object.__setattr__(clone, "plugin", plugin)
        if bronze_root is not None:
            object.__setattr__(clone, "bronze_root", bronze_root)
        return clone

    def check(self) -> None:
        """Raise DatasetError unless the declaration can drive a pipeline."""
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise DatasetError(
                f"dataset name {self.name!r} must be lowercase letters, digits and '_', "
                "starting with a letter (it becomes an S3 prefix and a Glue table)"
            )
        if isinstance(self.json_schema, bool):
            raise DatasetError(f"{self.name}: json_schema must be an object schema with properties, "
                               f"not the boolean schema {str(self.json_schema).lower()}")
        if not isinstance(self.json_schema, Mapping):
            raise DatasetError(f"{self.name}: json_schema must be a mapping")
        try:
            shape = self.record_shape
            self.validator  # noqa: B018 - compiling is the check (property validators share its refs)
        except schema_mod.SchemaError as exc:
            raise DatasetError(f"{self.name}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any compile failure is the schema's
            raise DatasetError(f"{self.name}: JSON Schema does not compile: {type(exc).__name__}: {exc}") from None
        etf = self.event_time_field
        names = [f.name for f in shape.fields]
        if etf not in names or not shape.field(etf).required:
            raise DatasetError(
                f"{self.name}: event-time field {etf!r} must be a required property"
            )
        if shape.field(etf).shape.kind != "timestamp" or shape.field(etf).shape.nullable:
            raise DatasetError(
                f"{self.name}: event-time field {etf!r} must be "
                '{"type": "string", "format": "date-time"} (not nullable)'
            )
        if self.apply_defaults:
            self._check_defaults()
        if etf not in self.arrow_schema.names or self.arrow_schema.field(etf).type != schema_mod.TIMESTAMP:
            raise DatasetError(
                f"{self.name}: silver_schema must keep {etf!r} as timestamp[us, UTC] (it gives dt)"
            )
        if "dt" in self.arrow_schema.names:
            raise DatasetError(f"{self.name}: 'dt' is the partition column; rename that field")
        from elt_sdk.quality import RuleError, check_rules

        try:
            check_rules(self.quality_rules, self.arrow_schema.names)
        except RuleError as exc:
            raise DatasetError(f"{self.name}: quality rule: {exc}") from None
        if not self.bronze_prefix.endswith("/"):
            raise DatasetError(f"{self.name}: prefix {self.bronze_prefix!r} must end with '/'")


    def _check_defaults(self) -> None:
        """With ``apply_defaults``, a default is inserted into records: it must be valid against
        its own schema and fit the silver type, or every record lacking the field would fail."""
        from elt_sdk.validator import compile_validator
        from elt_sdk.values import ValueIssue, converter

        def check(shape: schema_mod.Shape, raw: Mapping[str, Any], pointer: str) -> None:
            for f in shape.fields:
                prop = raw.get("properties", {}).get(f.name)
                if isinstance(prop, Mapping) and "default" in prop:
                    default = prop["default"]
                    sub = f"{pointer}/properties/{schema_mod.pointer_token(f.name)}"
                    try:
                        compile_validator(self.json_schema, ref=sub)(copy.deepcopy(default))
                        converter(f.shape)(default, f.shape.path)
                    except ValueIssue as exc:
                        raise DatasetError(f"{self.name}: {f.shape.path}: default {default!r} does not fit "
                                           f"the silver type: {exc}") from None
                    except Exception as exc:  # noqa: BLE001 - fastjsonschema's value errors
                        raise DatasetError(f"{self.name}: {f.shape.path}: default {default!r} is not valid "
                                           f"against its own schema: {getattr(exc, 'message', exc)}") from None
                if f.shape.kind == "struct":
                    check(f.shape, f.shape.schema, f.shape.pointer)

        check(self.record_shape, self.record_shape.schema, self.record_shape.pointer)


def load_json(package: str, filename: str) -> Any:
    """Read a JSON file shipped inside a plugin package (schema.json, rules.json)."""
    return json.loads(resources.files(package).joinpath(filename).read_text(encoding="utf-8"))
