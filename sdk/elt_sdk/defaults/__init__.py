"""The SDK's own defaults, registered as plugins (``trylast``) so any dataset plugin can override
one hook and keep the rest: JSON parse, JSON Schema validation, identity map, Parquet write,
schema-driven fake records."""
from __future__ import annotations



def builtin_plugins() -> list[tuple[str, object]]:
    from elt_sdk.defaults import fake, mapping, parse, validate, write

    return [
        ("elt_sdk.defaults.parse", parse),
        ("elt_sdk.defaults.validate", validate),
        ("elt_sdk.defaults.map", mapping.DefaultMap()),
        ("elt_sdk.defaults.write", write),
        ("elt_sdk.defaults.fake", fake),
    ]
