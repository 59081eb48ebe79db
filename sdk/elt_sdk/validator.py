"""fastjsonschema, compiled with JSON Schema's meaning where fastjsonschema has its own.

fastjsonschema generates Python code from a schema, which is why it is fast. Where its meaning
differs from the draft-07 specification, the generated code is changed here, keyword by keyword:

- ``pattern`` and ``patternProperties`` are ECMA-262 (``ecma.to_python``); the error message
  quotes the pattern as the schema wrote it. A pattern that is not ECMA-262 refuses the schema.
- ``multipleOf`` is exact: integers as integers, floats as the decimal they print as (``0.0075``
  is a multiple of ``0.0001``), with fractions, so ``1e308`` is a multiple of ``0.5`` instead of
  failing with "inifinity reached". A number beyond float64 (``1e400``) is left to the silver
  type's check, which refuses it with a reason naming the limit.
- ``date-time``, ``date`` and ``time`` are RFC 3339 exactly (ASCII digits, real calendar days,
  a leap second only at 23:59:60 UTC); ``regex`` means an ECMA-262 pattern; the other formats
  are fastjsonschema's regular expressions with ASCII ``\\d``/``\\w``/``\\s``.
- ``integer`` accepts any number with a zero fractional part, ``1e400`` included.
- ``default`` is an annotation: inserted into records only when the dataset opts in.
- ``$ref`` is resolved within the dataset's schema only; a remote reference refuses the schema
  instead of being fetched.
"""
from __future__ import annotations

import copy
import re
from fractions import Fraction
from typing import Any, Callable, Mapping

import fastjsonschema
from fastjsonschema.draft07 import CodeGeneratorDraft07
from fastjsonschema.ref_resolver import RefResolver

from elt_sdk import ecma
from elt_sdk.schema import SchemaError, pointer_path, walk
from elt_sdk.values import OutOfRange, is_date, is_date_time, is_time

Validator = Callable[[Any], Any]


class _NoRemote(dict):
    """fastjsonschema's handlers: every scheme is 'handled', by refusing to fetch it."""

    def __contains__(self, scheme: object) -> bool:
        return True

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        def refuse(uri: str) -> Any:
            raise SchemaError(f"$ref {uri!r} points outside the dataset's schema (remote schemas are never fetched)")
        return refuse


def _is_regex(value: str) -> bool:
    try:
        ecma.to_python(value)
        return True
    except (ecma.EcmaPatternError, RecursionError):  # RecursionError: parentheses nested thousands deep
        return False


def _ascii(regex: str) -> Callable[[str], bool]:
    """fastjsonschema's format expression with ASCII ``\\d``/``\\w``/``\\s``, compiled on first use
    (compiling them all costs ~10 ms of every cold start)."""
    compiled: list[re.Pattern[str]] = []

    def check(value: str) -> bool:
        if not compiled:
            compiled.append(re.compile(regex, re.ASCII))
        return compiled[0].match(value) is not None

    return check


FORMATS: dict[str, Callable[[str], bool]] = {
    **{name: _ascii(regex) for name, regex in CodeGeneratorDraft07.FORMAT_REGEXS.items()},
    "date-time": is_date_time, "date": is_date, "time": is_time, "regex": _is_regex,
}


def is_multiple(value: Any, divisor: Fraction) -> bool:
    """``value`` is an integer multiple of ``divisor``, exactly (floats as the decimal they print
    as; a number beyond float64 is not judged here)."""
    if isinstance(value, int):
        return Fraction(value) % divisor == 0 if divisor.denominator != 1 else value % divisor.numerator == 0
    if isinstance(value, OutOfRange) or value != value or value in (float("inf"), float("-inf")):
        return True
    return Fraction(repr(value)) % divisor == 0


def _exact(number: Any) -> Fraction:
    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)


class _Generator(CodeGeneratorDraft07):
    """Draft-07 code generation with the changes listed in the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._extra_imports_objects["_is_multiple"] = is_multiple
        self._extra_imports_objects["_Fraction"] = Fraction
        self._extra_imports_objects["_OutOfRange"] = OutOfRange

    def generate_pattern(self) -> None:
        with self.l("if isinstance({variable}, str):"):
            pattern = self._definition["pattern"]
            self._compile_regexps[pattern] = ecma.compile_python(pattern)
            with self.l("if not REGEX_PATTERNS[{}].search({variable}):", repr(pattern)):
                self.exc("{name} must match pattern {}", self.e(pattern), rule="pattern")

    def generate_pattern_properties(self) -> None:
        self.create_variable_is_dict()
        with self.l("if {variable}_is_dict:"):
            self.create_variable_keys()
            definitions = self._definition["patternProperties"]
            if definitions == {}:
                return
            for pattern in definitions:
                self._compile_regexps[pattern] = ecma.compile_python(pattern)
            with self.l("for {variable}_key, {variable}_val in {variable}.items():"):
                for pattern, definition in definitions.items():
                    with self.l("if REGEX_PATTERNS[{}].search({variable}_key):", repr(pattern)):
                        with self.l("if {variable}_key in {variable}_keys:"):
                            self.l("{variable}_keys.remove({variable}_key)")
                        self.generate_func_code_block(definition, "{}_val".format(self._variable),
                                                      "{}.{{{}_key}}".format(self._variable_name, self._variable),
                                                      clear_variables=True)

    def generate_required(self) -> None:
        # fastjsonschema checks required names against patternProperties with Python's re
        definition = self._definition
        if definition.get("additionalProperties", True) is False and definition.get("patternProperties"):
            allowed = [n for n in definition["required"] if n in definition.get("properties", {})
                       or any(ecma.compile_python(p).search(n) for p in definition["patternProperties"])]
            if len(allowed) != len(definition["required"]):
                raise SchemaError(f"required names {sorted(set(definition['required']) - set(allowed))} "
                                  "are not allowed by additionalProperties: false")
            patched = dict(definition, patternProperties={})
            self._definition = patched
            try:
                super().generate_required()
            finally:
                self._definition = definition
            return
        super().generate_required()

    def generate_multiple_of(self) -> None:
        divisor = self._definition["multipleOf"]
        if isinstance(divisor, bool) or not isinstance(divisor, (int, float)) or not divisor > 0:
            raise SchemaError(f"multipleOf must be a number greater than 0, got {divisor!r}")
        exact = _exact(divisor)
        with self.l("if isinstance({variable}, (int, float)) and not isinstance({variable}, bool):"):
            with self.l("if not _is_multiple({variable}, _Fraction({}, {})):", exact.numerator, exact.denominator):
                self.exc("{name} must be multiple of {multipleOf}", rule="multipleOf")

    def generate_type(self) -> None:
        types = self._definition["type"]
        types = [types] if isinstance(types, str) else types
        if "integer" in types and "number" not in types:
            # 1e400 is an integer to JSON Schema; the silver type's check says it is too big
            with self.l("if isinstance({variable}, _OutOfRange) and {variable}.is_integer():"):
                self.l("pass")
            with self.l("else:"):
                super().generate_type()
            return
        super().generate_type()


# what $schema may say: draft-07 (and draft-06, which it extends); other drafts mean other things
DIALECTS = ("http://json-schema.org/draft-07/schema", "http://json-schema.org/draft-06/schema")


def _check_keywords(schema: Any) -> None:
    """Refuse at load what would otherwise fail (or mean something else) at run time."""
    dialect = schema.get("$schema") if isinstance(schema, Mapping) else None
    if dialect is not None and (not isinstance(dialect, str) or
                                dialect.replace("https://", "http://").rstrip("#") not in DIALECTS):
        raise SchemaError(f"$.$schema is {dialect!r}: the SDK validates JSON Schema draft-07 "
                          "(http://json-schema.org/draft-07/schema#); other drafts give keywords other meanings")
    for sub, pointer in walk(schema):
        if not isinstance(sub, Mapping):
            if not isinstance(sub, bool):
                raise SchemaError(f"{pointer_path(pointer)}: a schema must be an object or a boolean, got {sub!r}")
            continue
        where = pointer_path(pointer)
        patterns = []
        if "pattern" in sub:
            patterns.append(("pattern", sub["pattern"]))
        if isinstance(sub.get("patternProperties"), Mapping):
            patterns += [("patternProperties", p) for p in sub["patternProperties"]]
        for keyword, pattern in patterns:
            try:
                ecma.to_python(pattern)
            except ecma.EcmaPatternError as exc:
                raise SchemaError(f"{where}.{keyword}: {exc}") from None
        if "multipleOf" in sub:
            m = sub["multipleOf"]
            if isinstance(m, bool) or not isinstance(m, (int, float)) or not m > 0:
                raise SchemaError(f"{where}.multipleOf must be a number greater than 0, got {m!r}")


def compile_validator(schema: Any, *, apply_defaults: bool = False, ref: str | None = None) -> Validator:
    """A validator for ``schema`` (a dataset's whole JSON Schema). With ``ref`` (a JSON pointer
    like ``#/properties/a``), one for that subschema, its ``$ref`` resolved against the whole
    schema. Raises SchemaError (with the place and the reason) for a schema that cannot work."""
    if isinstance(schema, bool):
        raise SchemaError(f"$: a dataset's JSON Schema must be an object schema with properties, got {schema}")
    if not isinstance(schema, Mapping):
        raise SchemaError("$: a dataset's JSON Schema must be a JSON object")
    _check_keywords(schema)
    definition = copy.deepcopy(dict(schema))  # fastjsonschema rewrites $ref values in place
    if ref is not None:
        definition["$ref"] = ref  # draft-07: the siblings of $ref are ignored, the document stays
    resolver = RefResolver.from_schema(definition, handlers=_NoRemote(), store={})
    generator = _Generator(definition, resolver=resolver, formats=FORMATS, use_default=apply_defaults)
    try:
        state = generator.global_state
        exec(generator.func_code, state)  # noqa: S102 - fastjsonschema.compile does the same
    except SchemaError:
        raise
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise SchemaError(f"the JSON Schema does not compile: {exc}") from None
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise SchemaError(f"the JSON Schema does not compile: {type(exc).__name__}: {exc}") from None
    func = state[resolver.get_scope_name()]

    def validate(data: Any) -> Any:
        return func(data, custom_formats=FORMATS)

    return validate
