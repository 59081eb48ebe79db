"""``elt-sdk new-plugin``: generated packages are valid at once; one is installed for real and its
own tests run green; ``check-plugin`` judges installed plugins."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest
from click.testing import CliRunner

from elt_sdk.cli import main
from elt_sdk.dataset import Dataset


def cli(*args, env=None, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "elt_sdk.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


@pytest.mark.parametrize("name", ["orders", "web_orders2", "x"])
def test_generated_package_is_complete(tmp_path, name):
    target = tmp_path / "pkg"
    res = CliRunner().invoke(main, ["new-plugin", name, "--dir", str(target)])
    assert res.exit_code == 0, res.output
    package = f"elt_{name}"
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
    assert "10 passed" in tests.stdout

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
    assert "web_orders: 8 of 8 passed" in checked.stdout


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
