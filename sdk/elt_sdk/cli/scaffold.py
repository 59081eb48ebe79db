"""``elt-sdk new-plugin`` and ``elt-sdk check-plugin``: writing a dataset plugin, and judging one."""
from __future__ import annotations

import sys
import tempfile
import textwrap
from pathlib import Path

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, state


@click.command("new-plugin")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the package (default: ./elt-NAME).")
@click.option("--force", is_flag=True, help="Replace the directory if it exists.")
def new_plugin(name: str, directory: Path | None, force: bool) -> None:
    """Generate a pip-installable dataset plugin NAME whose tests pass at once.

    \b
    Next steps:
      pip install -e elt-NAME && (cd elt-NAME && pytest) && elt-sdk plugins
    """
    from elt_sdk.scaffold import ScaffoldError, check_name, render

    try:
        names = check_name(name)
        target = directory or Path(names.dist)
        written = render(name, target, force=force)
    except ScaffoldError as exc:
        raise UsageProblem(str(exc)) from None
    click.echo(f"created {target}/ ({len(written)} files):")
    for path in written:
        click.echo(f"  {path.relative_to(target)}")
    click.echo(textwrap.dedent(f"""
        next:
          pip install -e {target}
          (cd {target} && pytest -q)
          elt-sdk plugins
          elt-sdk transform {target}/{names.package}/sample.jsonl --dataset {name} --out out"""))


class _Collector:
    def __init__(self) -> None:
        self.results: list[dict[str, str]] = []

    def pytest_runtest_logreport(self, report) -> None:  # noqa: ANN001 - pytest hook
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            message = ""
            if report.failed:
                crash = getattr(report.longrepr, "reprcrash", None)
                message = (crash.message if crash else str(report.longrepr)).splitlines()[0][:300]
            elif report.skipped:
                message = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.results.append({"test": report.nodeid.split("::", 1)[1], "outcome": report.outcome,
                                 "message": message})


@click.command("check-plugin")
@click.argument("name")
@click.option("--examples", type=click.IntRange(1), default=25, show_default=True, help="Hypothesis examples per test.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable verdict.")
def check_plugin(name: str, examples: int, as_json: bool) -> None:
    """Run the SDK's standard suite on the datasets of installed plugin NAME.

    \b
    A plugin that declares its DatasetSuite subclass under the "elt_sdk.suites" entry-point
    group is checked with that class: its skip_tests (printed, with their reasons) and its
    field_strategies apply. Other datasets get the bare standard suite.

    Exit codes: 0 every test passed (or was switched off by the plugin), 1 a test failed or the
    plugin's suite declaration is broken, 2 no such plugin.
    """
    import os

    try:
        import hypothesis  # noqa: F401
        import pytest

        from elt_sdk.testing.suite import SUITE_GROUP, SuiteDeclarationError, declared_suites
    except ImportError:
        raise UsageProblem("check-plugin needs the testing extra: pip install 'elt-sdk[testing]'") from None
    reg = state().registry
    plugin = next((p for p in reg.plugins if p.name == name), None)
    if plugin is None:
        broken = next((b for b in reg.broken if b.name == name), None)
        if broken:
            raise RunFailure(f"plugin {name} does not load: {broken.error}")
        raise UsageProblem(f"no installed plugin {name!r}; installed: {', '.join(p.name for p in reg.plugins)}")
    if not plugin.datasets:
        raise UsageProblem(f"plugin {name} declares no dataset")
    try:
        suites = declared_suites(plugin.distribution, plugin.datasets)
    except SuiteDeclarationError as exc:
        raise RunFailure(f"plugin {name}: {exc}") from None
    switched_off = {f"Test_{ds}::{test}": {"reason": reason, "declared_by": suites[ds][0]}
                    for ds in plugin.datasets if ds in suites for test, reason in suites[ds][1].switched_off().items()}
    os.environ.setdefault("ELT_SDK_SUITE_EXAMPLES", str(examples))
    collector = _Collector()
    with tempfile.TemporaryDirectory(prefix="elt-check-") as tmp:
        test_file = Path(tmp) / f"test_check_{name}.py"
        source = ["from elt_sdk.testing.suite import DatasetSuite"]
        for i, ds in enumerate(plugin.datasets):
            if ds in suites:
                module, _, attr = suites[ds][0].partition(":")
                source.append(f"from {module} import {attr} as _Declared{i}")
            base = f"_Declared{i}" if ds in suites else "DatasetSuite"
            source.append(f"\n\nclass Test_{ds}({base}):\n    dataset = {ds!r}\n")
        test_file.write_text("\n".join(source))
        (Path(tmp) / "pytest.ini").write_text("[pytest]\n")
        code = pytest.main([str(test_file), "-p", "no:cacheprovider", "-p", "no:terminal",
                            "--rootdir", tmp, "-c", str(Path(tmp) / "pytest.ini")], plugins=[collector])
    failed = [r for r in collector.results if r["outcome"] == "failed"]
    if as_json:
        emit_json({"plugin": name, "datasets": plugin.datasets, "results": collector.results,
                   "suites": {ds: suites[ds][0] if ds in suites else None for ds in plugin.datasets},
                   "switched_off": switched_off, "ok": not failed and code == 0})
    else:
        for ds in plugin.datasets:
            click.echo(f"{ds}: " + (f"suite {suites[ds][0]} ({SUITE_GROUP})" if ds in suites
                                    else f"the standard suite (no {SUITE_GROUP} entry)"))
        if switched_off:
            click.echo("switched off by the plugin:")
            for test, why in switched_off.items():
                click.echo(f"  {test}: {why['reason']}")
        for r in collector.results:
            mark = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[r["outcome"]]
            click.echo(f"{mark}  {r['test']}" + (f"\n      {r['message']}" if r["message"] else ""))
        passed = sum(r["outcome"] == "passed" for r in collector.results)
        skipped = sum(r["outcome"] == "skipped" for r in collector.results)
        click.echo(f"{name}: {passed} of {len(collector.results)} passed, {skipped} switched off, {len(failed)} failed")
    if failed or code not in (0,):
        raise RunFailure(f"plugin {name} fails the standard suite ({len(failed)} test(s)); see above")
    sys.stdout.flush()
