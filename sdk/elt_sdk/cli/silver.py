"""Where a command reads or rewrites silver: the targeted stack's silver bucket, or a local
output folder (``--silver DIR``, as ``elt-sdk transform --out`` and ``local run --out`` write)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from elt_sdk import layout
from elt_sdk.cli.context import UsageProblem
from elt_sdk.cli.targeting import TargetSpec


def silver_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--silver", "silver_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        metavar="DIR", help="A local output folder (holding silver/) instead of a stack.")(fn)


def local_root(path: Path) -> Path:
    """The folder holding ``silver/``: ``DIR`` itself, or its parent when ``DIR`` is ``silver/``."""
    if not path.is_dir():
        raise UsageProblem(f"no such folder: {path}")
    if (path / "silver").is_dir():
        return path
    if path.name == "silver":
        return path.parent
    raise UsageProblem(f"no silver/ under {path} (a folder written by 'elt-sdk transform --out' or 'local run --out')")


def silver_store(target: TargetSpec, silver_dir: Path | None) -> tuple[Any, str]:
    """The silver ``Store`` and a description of it."""
    silver, _, where = stores(target, silver_dir)
    return silver, where


def stores(target: TargetSpec, silver_dir: Path | None) -> tuple[Any, Any, str]:
    """The silver and quarantine ``Store``s (one folder locally) and a description of silver."""
    if silver_dir is not None:
        if target.given:
            raise UsageProblem("--silver reads a local folder: it does not go with a stack option")
        from elt_sdk.store import LocalStore

        root = local_root(silver_dir)
        return LocalStore(root), LocalStore(root), str(root)
    t = target.resolve()
    silver, quarantine = t.stores()
    return silver, quarantine, f"s3://{t.silver_bucket} ({t.description})"


def local_iceberg(root: Path, namespace: str) -> Any:
    """The Iceberg warehouse of a local output folder (``DIR/iceberg.db``), or None (plain silver)."""
    if not (root / layout.LOCAL_ICEBERG_CATALOG).is_file():
        return None
    try:
        from elt_sdk.iceberg.catalog import local_warehouse
    except ImportError as exc:
        raise UsageProblem(f"{root} holds Iceberg tables: reading them needs the iceberg extra "
                           f"(pip install 'elt-sdk[iceberg]'): {exc}") from None
    return local_warehouse(root, namespace)


def iceberg_silver(target: TargetSpec, silver_dir: Path | None, namespace: str) -> tuple[Any, Any, str] | None:
    """(warehouse, silver store, description) when the targeted silver is Iceberg tables, else None."""
    store, where = silver_store(target, silver_dir)
    if silver_dir is not None:
        warehouse = local_iceberg(local_root(silver_dir), namespace)
        return (warehouse, store, where) if warehouse is not None else None
    t = target.resolve()
    if not t.iceberg:
        return None
    try:
        return t.warehouse(), store, where
    except ImportError as exc:
        raise UsageProblem(f"{where} holds Iceberg tables: this needs the iceberg extra "
                           f"(pip install 'elt-sdk[iceberg]'): {exc}") from None
