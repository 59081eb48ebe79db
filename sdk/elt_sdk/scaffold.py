"""``elt-sdk new-plugin``: render the plugin template tree (``templates/plugin``) with Jinja2.

Both file contents and path segments are templates (``{{ package }}/__init__.py.j2``), as in
cookiecutter; ``.j2`` files are rendered and lose the suffix, other files are copied. Dotfiles are
named ``{{ dot }}name`` in the template tree (package-data globs skip names starting with a dot).
"""
from __future__ import annotations

import json
import keyword
import random
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from elt_sdk import __version__
from elt_sdk.dataset import NAME_RE
from elt_sdk.fake import fake_record

TEMPLATE = "templates/plugin"


class ScaffoldError(ValueError):
    pass


@dataclass(frozen=True)
class PluginNames:
    name: str

    @property
    def dist(self) -> str:
        return "elt-" + self.name.replace("_", "-")

    @property
    def package(self) -> str:
        return f"elt_{self.name}"

    @property
    def title(self) -> str:
        return self.name.replace("_", " ").title()

    @property
    def class_name(self) -> str:
        return self.title.replace(" ", "")


def check_name(name: str) -> PluginNames:
    if not NAME_RE.match(name or ""):
        hint = "".join(c if c.isalnum() else "_" for c in (name or "").lower()).strip("_") or "my_feed"
        if not hint[0].isalpha():
            hint = "feed_" + hint
        raise ScaffoldError(f"invalid plugin name {name!r}: use lowercase letters, digits and '_', "
                            f"starting with a letter (e.g. {hint!r})")
    if keyword.iskeyword(name):
        raise ScaffoldError(f"invalid plugin name {name!r}: it is a Python keyword")
    return PluginNames(name)


def render(name: str, target: Path, *, force: bool = False) -> list[Path]:
    """Write the plugin package for ``name`` into ``target``; the files written."""
    try:
        import jinja2
    except ImportError:  # pragma: no cover - the scaffold extra is part of dev installs
        raise ScaffoldError("new-plugin needs Jinja2: pip install 'elt-sdk[scaffold]'") from None
    names = check_name(name)
    if target.exists() and any(target.iterdir()) and not force:
        raise ScaffoldError(f"{target} already exists and is not empty; choose another --dir or pass --force")
    if target.exists() and force:
        shutil.rmtree(target)
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)
    major, minor = (int(p) for p in __version__.split(".")[:2])
    context = {"name": names.name, "dist": names.dist, "package": names.package, "title": names.title,
               "class_name": names.class_name, "sdk_version": __version__, "dot": ".",
               # a compatible-release pin (~=0.2): this SDK's API, and the releases that keep it
               "sdk_series": f"{major}.{minor}", "sdk_next_major": f"{major + 1}.0"}
    root = resources.files("elt_sdk").joinpath(TEMPLATE)
    schema_text = env.from_string(root.joinpath("{{ package }}", "schema.json.j2").read_text(encoding="utf-8")).render(context)
    context["sample_lines"] = _sample_lines(json.loads(schema_text), names)
    written: list[Path] = []
    for src, rel in _walk(root, ""):
        out_rel = env.from_string(rel).render(context)
        out = target / (out_rel[:-3] if out_rel.endswith(".j2") else out_rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".j2"):
            text = src.read_text(encoding="utf-8")
            out.write_text(env.from_string(text).render(context), encoding="utf-8")
        else:
            out.write_bytes(src.read_bytes())
        written.append(out)
    return written


def _walk(node, prefix: str):
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                yield from _walk(child, rel + "/")
        else:
            yield child, rel


def _sample_lines(schema: dict, names: PluginNames, count: int = 20) -> list[str]:
    """Sample events valid against the plugin's schema, drawn from the schema itself."""
    rng = random.Random(names.name)
    return [json.dumps(fake_record(schema, rng)) for _ in range(count)]
