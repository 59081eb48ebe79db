"""``elt-sdk new-plugin``: generated packages are valid at once; one is installed for real and its
own tests run green; ``check-plugin`` judges installed plugins."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib

import pytest
from click.testing import CliRunner

from elt_sdk.cli import main
from elt_sdk.dataset import Dataset
from elt_sdk.scaffold import check_name


def cli(*args, env=None, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "elt_sdk.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


@pytest.mark.parametrize("name", ["orders", "web_orders2", "x"])
def test_generated_package_is_complete(tmp_path, name):
    target = tmp_path / "pkg"
    res = CliRunner().invoke(main, ["new-plugin", name, "--dir", str(target)])
    assert res.exit_code == 0, res.output
    package = f"elt_{name}"
    names = check_name(name)
    meta = tomllib.loads((target / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "elt-" + name.replace("_", "-")
    assert meta["project"]["entry-points"]["elt_sdk"] == {name: package}
    schema = json.loads((target / package / "schema.json").read_text())
    ds = Dataset(name=name, json_schema=schema)
    ds.check()
    sample = (target / package / "sample.jsonl").read_text().splitlines()
    assert len(sample) == 20
    for line in sample:
        ds.validator(json.loads(line))
    assert json.loads((target / package / "rules.json").read_text())
    compile((target / package / "__init__.py").read_text(), "init", "exec")
    compile((target / "tests" / f"test_{name}.py").read_text(), "test", "exec")
    compile((target / package / "suite.py").read_text(), "suite", "exec")
    # a compatible-release pin on the SDK's series, and the suite check-plugin will use
    assert meta["project"]["dependencies"] == ["elt-sdk~=0.2"]
    assert meta["project"]["optional-dependencies"]["test"] == ["elt-sdk[testing]~=0.2"]
    assert meta["project"]["entry-points"]["elt_sdk.suites"] == {name: f"{package}.suite:Test{names.class_name}"}
    # build artefacts stay out of the sources
    ignored = (target / ".gitignore").read_text().split()
    assert {"build/", "dist/", "*.egg-info/", "__pycache__/", ".hypothesis/"} <= set(ignored)


def test_generated_plugin_uses_only_the_public_api(tmp_path):
    """No pyarrow.compute (its import is ~20 ms of every cold start), nothing internal, no
    "is this my dataset?" guard (hooks are called only for the plugin's own datasets)."""
    import ast

    import elt_sdk

    target = tmp_path / "pkg"
    assert CliRunner().invoke(main, ["new-plugin", "orders", "--dir", str(target)]).exit_code == 0
    for path in [target / "elt_orders" / "__init__.py", target / "elt_orders" / "suite.py", target / "tests" / "test_orders.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [(node.module, a.name) for a in node.names]
            else:
                continue
            for module, name in modules:
                assert module != "pyarrow.compute", f"{path.name} imports pyarrow.compute"
                if module == "elt_sdk":
                    assert name in elt_sdk.__all__, f"{path.name}: elt_sdk.{name} is not public"
                elif module.startswith("elt_sdk."):
                    assert module.split(".")[1] in ("testing", "kernels"), f"{path.name} imports internal {module}"
        assert "dataset.name" not in path.read_text(), f"{path.name} still tests which dataset it is called for"


@pytest.mark.parametrize("name", ["My-Feed", "1abc", "class", "has space", "x" * 70])
def test_bad_names_are_refused_with_one_line(tmp_path, name):
    res = CliRunner().invoke(main, ["new-plugin", name, "--dir", str(tmp_path / "p")])
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "invalid plugin name" in res.stderr
    assert not (tmp_path / "p").exists()


def test_existing_directory_is_kept_without_force(tmp_path):
    target = tmp_path / "p"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    res = CliRunner().invoke(main, ["new-plugin", "orders", "--dir", str(target)])
    assert res.exit_code == 2 and "--force" in res.stderr
    assert (target / "mine.txt").read_text() == "keep me"
    res = CliRunner().invoke(main, ["new-plugin", "orders", "--dir", str(target), "--force"])
    assert res.exit_code == 0 and not (target / "mine.txt").exists() and (target / "pyproject.toml").exists()


def test_generated_plugin_installs_lists_transforms_and_passes_its_own_tests(tmp_path):
    src = tmp_path / "elt-web-orders"
    assert CliRunner().invoke(main, ["new-plugin", "web_orders", "--dir", str(src)]).exit_code == 0
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(src)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    assert (site / "elt_web_orders" / "schema.json").exists()  # package data went into the wheel
    env = {**os.environ, "PYTHONPATH": str(site)}

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=src, env=env,
                           capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "11 passed" in tests.stdout  # the standard suite's 9, and the plugin's own 2

    listed = cli("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    plugin = next(p for p in json.loads(listed.stdout)["plugins"] if p["name"] == "web_orders")
    assert plugin["distribution"] == "elt-web-orders" and plugin["datasets"][0]["prefix"] == "bronze/web_orders/"

    out = tmp_path / "out"
    moved = cli("transform", str(site / "elt_web_orders" / "sample.jsonl"), "--dataset", "web_orders",
                "--out", str(out), "--json", env=env)
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["datasets"]["web_orders"]["written"] == 20
    assert list((out / "silver" / "web_orders").glob("dt=*/*.parquet"))

    checked = cli("check-plugin", "web_orders", "--examples", "10", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "web_orders: suite elt_web_orders.suite:TestWebOrders (elt_sdk.suites)" in checked.stdout
    assert "web_orders: 9 of 9 passed, 0 switched off, 0 failed" in checked.stdout


def test_check_plugin_fails_a_broken_plugin(fake_dist):
    make, root = fake_dist
    make("fake_jitter", '''
        import random
        import pyarrow as pa, pyarrow.compute as pc
        from elt_sdk import Dataset, hookimpl
        @hookimpl
        def elt_datasets():
            return [Dataset(name="fake_jitter", json_schema={"type": "object", "required": ["event_time", "v"],
                    "properties": {"event_time": {"type": "string", "format": "date-time"}, "v": {"type": "number"}}})]
        @hookimpl
        def elt_map(dataset, table):
            if dataset.name != "fake_jitter":
                return None
            noise = pa.array([random.random() for _ in range(table.num_rows)], pa.float64())
            return table.set_column(1, "v", pc.add(table.column("v"), noise))
    ''')
    env = {**os.environ, "PYTHONPATH": str(root), "ELT_SDK_SUITE_SHRINK": "0"}
    proc = cli("check-plugin", "fake_jitter", "--examples", "10", env=env)
    assert proc.returncode == 1
    assert "FAIL  Test_fake_jitter::test_transform_is_deterministic" in proc.stdout
    assert "PASS  Test_fake_jitter::test_valid_records_map_to_silver_rows" in proc.stdout
    assert proc.stderr.strip().startswith("Error: plugin fake_jitter fails the standard suite")
    missing = cli("check-plugin", "nope", env=env)
    assert missing.returncode == 2 and "no installed plugin 'nope'" in missing.stderr


CODES = '''
    import pyarrow as pa
    from elt_sdk import Dataset, hookimpl
    from elt_sdk import kernels as k

    SILVER = pa.schema([pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
                        pa.field("code", pa.string(), nullable=False), pa.field("code_number", pa.int64(), nullable=False)])

    @hookimpl
    def elt_datasets():
        return [Dataset(name="fake_codes", silver_schema=SILVER, json_schema={
            "type": "object", "required": ["event_time", "code"],
            "properties": {"event_time": {"type": "string", "format": "date-time"}, "code": {"type": "string"}}})]

    @hookimpl
    def elt_map(dataset, table):
        """Codes are numbers sent as strings: something the schema does not say."""
        code = table.column("code")
        return pa.table([table.column("event_time"), code, k.cast(code, pa.int64())], schema=SILVER)
'''

SUITE = '''
    from hypothesis import strategies as st
    from elt_sdk.testing.suite import DatasetSuite

    class CodesSuite(DatasetSuite):
        dataset = "fake_codes"
        field_strategies = {"code": st.from_regex(r"\\A[0-9]{1,9}\\Z")}
        skip_tests = {"test_json_array_and_jsonl_agree": "the feed is JSON Lines only"}
'''


def _with_suite(make, root, suite_source: str, entry: str = "fake_codes_suite:CodesSuite") -> dict:
    """The fake_codes plugin, whose distribution also declares ``entry`` as its suite."""
    if not (root / "fake_codes.py").exists():
        make("fake_codes", CODES)
    (root / "fake_codes_suite.py").write_text(textwrap.dedent(suite_source))
    (root / "fake_codes-0.1.0.dist-info" / "entry_points.txt").write_text(
        f"[elt_sdk]\nfake_codes = fake_codes\n\n[elt_sdk.suites]\nfake_codes = {entry}\n")
    return {**os.environ, "PYTHONPATH": str(root), "ELT_SDK_SUITE_SHRINK": "0"}


def test_check_plugin_runs_the_suite_the_plugin_declares(fake_dist):
    """The plugin's suite class (elt_sdk.suites entry point): its field strategy is used (without
    it the map fails on codes that are not numbers) and its switch-off is honoured and printed."""
    make, root = fake_dist
    env = _with_suite(make, root, SUITE)
    proc = cli("check-plugin", "fake_codes", "--examples", "8", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "fake_codes: suite fake_codes_suite:CodesSuite (elt_sdk.suites)" in out
    assert "switched off by the plugin:\n  Test_fake_codes::test_json_array_and_jsonl_agree: the feed is JSON Lines only" in out
    assert "SKIP  Test_fake_codes::test_json_array_and_jsonl_agree" in out
    assert "fake_codes: 8 of 9 passed, 1 switched off, 0 failed" in out
    verdict = json.loads(cli("check-plugin", "fake_codes", "--examples", "3", "--json", env=env).stdout)
    assert verdict["ok"] and verdict["suites"] == {"fake_codes": "fake_codes_suite:CodesSuite"}
    assert verdict["switched_off"] == {"Test_fake_codes::test_json_array_and_jsonl_agree": {
        "reason": "the feed is JSON Lines only", "declared_by": "fake_codes_suite:CodesSuite"}}

    # the same plugin without its suite: the bare suite draws any string for the code, the map fails
    bare = _with_suite(make, root, SUITE.replace("field_strategies", "_unused"))
    proc = cli("check-plugin", "fake_codes", "--examples", "8", env=bare)
    assert proc.returncode == 1
    assert "FAIL  Test_fake_codes::test_valid_records_map_to_silver_rows" in proc.stdout


@pytest.mark.parametrize("suite, entry, message", [
    (SUITE, "fake_codes_suite:Missing", "elt_sdk.suites entry fake_codes = 'fake_codes_suite:Missing' does not load"),
    (SUITE.replace("test_json_array_and_jsonl_agree", "test_arrays"), "fake_codes_suite:CodesSuite",
     "skip_tests names no test: test_arrays"),
    (SUITE.replace('dataset = "fake_codes"', 'dataset = "shipments"'), "fake_codes_suite:CodesSuite",
     "tests dataset 'shipments', which the plugin does not declare"),
    ("X = 1\n", "fake_codes_suite:X", "is not a DatasetSuite subclass"),
])
def test_check_plugin_reports_a_broken_suite_declaration(fake_dist, suite, entry, message):
    make, root = fake_dist
    env = _with_suite(make, root, suite, entry)
    proc = cli("check-plugin", "fake_codes", "--examples", "3", env=env)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: plugin fake_codes: ") and message in proc.stderr, proc.stderr
