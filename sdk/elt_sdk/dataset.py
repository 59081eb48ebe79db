"""The dataset contract: what a plugin declares, and what the SDK derives from it."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any, Callable, Mapping

import fastjsonschema
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
    def bronze_arrow_schema(self) -> pa.Schema:
        """Typed shape of a valid bronze record (timestamps parsed)."""
        return schema_mod.arrow_schema(self.json_schema)

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        """Shape of a silver row: declared, or the bronze shape when the map keeps it."""
        return self.silver_schema if self.silver_schema is not None else self.bronze_arrow_schema

    @cached_property
    def validator(self) -> Callable[[Any], Any]:
        """fastjsonschema's compiled validator for one bronze record."""
        return fastjsonschema.compile(dict(self.json_schema))

    @cached_property
    def property_validators(self) -> dict[str, Callable[[Any], Any]]:
        """One validator per top-level property, so a rejected record lists every error."""
        return {
            name: fastjsonschema.compile(dict(prop))
            for name, prop in self.json_schema.get("properties", {}).items()
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
        if not isinstance(self.json_schema, Mapping):
            raise DatasetError(f"{self.name}: json_schema must be a mapping")
        try:
            self.validator  # noqa: B018 - compiling is the check
        except Exception as exc:  # fastjsonschema raises several kinds
            raise DatasetError(f"{self.name}: JSON Schema does not compile: {exc}") from None
        try:
            bronze = self.bronze_arrow_schema
        except schema_mod.SchemaError as exc:
            raise DatasetError(f"{self.name}: {exc}") from None
        props = self.json_schema.get("properties", {})
        etf = self.event_time_field
        if etf not in props or etf not in self.json_schema.get("required", ()):
            raise DatasetError(
                f"{self.name}: event-time field {etf!r} must be a required property"
            )
        if bronze.field(etf).type != schema_mod.TIMESTAMP:
            raise DatasetError(
                f"{self.name}: event-time field {etf!r} must be "
                '{"type": "string", "format": "date-time"}'
            )
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


def load_json(package: str, filename: str) -> Any:
    """Read a JSON file shipped inside a plugin package (schema.json, rules.json)."""
    return json.loads(resources.files(package).joinpath(filename).read_text(encoding="utf-8"))
