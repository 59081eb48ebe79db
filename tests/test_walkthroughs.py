"""CONTRIBUTING's plugin walk-throughs, run as written: their shell blocks are read from the file
and re-enacted command by command (heredocs written, ``elt-sdk`` called, the plugin installed
and its tests run), so the documentation cannot drift from what works.

Two stand-ins, both for this test process's sake: ``pip install -e .`` installs into a folder on
``PYTHONPATH`` (``--target``) instead of the test's own environment, and ``elt-sdk local run``
(an embedded AWS endpoint, tested elsewhere) is replaced by the routing decision it would make for
the same file. ``/tmp/`` paths go to the test's temporary folder.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from elt_sdk import layout

REPO = Path(__file__).resolve().parent.parent
HEREDOC = re.compile(r"cat > (\S+) <<'EOF'$")


def section(title: str) -> str:
    text = (REPO / "CONTRIBUTING.md").read_text()
    start = text.index(f"### {title}\n")
    end = min(i for i in (text.find("\n### ", start + 4), text.find("\n## ", start + 4), len(text)) if i != -1)
    return text[start:end]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


class Walk:
    """Re-enacts shell lines: cd, mkdir -p, heredocs, elt-sdk, pip install -e ., pytest."""

    def __init__(self, tmp: Path):
        self.tmp, self.cwd = tmp, tmp
        self.sites: list[Path] = []
        self.out: dict[str, str] = {}
        self.err: dict[str, str] = {}
        self.local_runs: list[list[str]] = []

    @property
    def env(self) -> dict[str, str]:
        path = [str(s) for s in self.sites] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "ELT_SDK_SUITE_SHRINK": "0"}

    def run_block(self, block: str) -> None:
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i].split("  #", 1)[0].strip()
            i += 1
            heredoc = HEREDOC.match(line)
            if heredoc:
                end = lines.index("EOF", i)
                path = self.cwd / heredoc.group(1)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("\n".join(lines[i:end]) + "\n")
                i = end + 1
            elif line:
                for command in line.split(" && "):
                    self.run(command.strip())

    def run(self, command: str) -> None:
        args = shlex.split(command.replace("/tmp/", f"{self.tmp}/"))
        if args[0] == "cd":
            self.cwd = (self.cwd / args[1]).resolve()
        elif args[:2] == ["mkdir", "-p"]:
            (self.cwd / args[2]).mkdir(parents=True, exist_ok=True)
        elif args[0] == "head":
            pass  # shows a file to the reader
        elif args[:3] == ["pip", "install", "-e"]:
            site = self.tmp / f"site-{self.cwd.name}"
            self.sites.append(site)
            self.check(command, [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                                 "--target", str(site), str(self.cwd / args[3])])
        elif args[0] == "pytest":
            self.check(command, [sys.executable, "-m", "pytest", *args[1:], "-p", "no:cacheprovider"])
        elif args[:3] == ["elt-sdk", "local", "run"]:
            self.local_runs.append(args[3:])
        elif args[0] == "elt-sdk":
            self.check(command, [sys.executable, "-m", "elt_sdk.cli", *args[1:]])
        else:
            raise AssertionError(f"the walk-through has a command this test does not re-enact: {command}")

    def check(self, command: str, argv: list[str]) -> None:
        proc = subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
        self.out[command], self.err[command] = proc.stdout, proc.stderr


@pytest.mark.slow
def test_the_nested_walk_through_ends_green(tmp_path):
    walk = Walk(tmp_path)
    for block in shell_blocks(section("Walk-through: a nested feed")):
        walk.run_block(block)
    assert re.search(r"\b12 passed\b", walk.out["pytest -q"])  # 9 standard tests and the plugin's 3
    assert "customs: 9 of 9 passed, 0 switched off, 0 failed" in walk.out["elt-sdk check-plugin customs"]
    generated = json.loads(next(v for k, v in walk.err.items() if "--invalid-rate" in k))  # gen's summary
    out = tmp_path / "customs-out"
    quarantined = [json.loads(line) for p in (out / "quarantine" / "customs").glob("*.jsonl") for line in p.read_text().splitlines()]
    assert len(quarantined) == generated["malformed"] + generated["schema_invalid"]
    nested = [q for q in quarantined if any(e["path"].startswith(("$.goods[", "$.declarant.")) for e in q["errors"])]
    assert len(nested) > generated["schema_invalid"] // 10, "gen --invalid-rate breaks nested constraints too"


@pytest.mark.slow
def test_the_flat_walk_through_ends_green_and_routes_by_folder(tmp_path):
    walk = Walk(tmp_path)
    walk.run("mkdir -p elt-customs")  # the walk-through starts where the nested one ended
    walk.run("cd elt-customs")
    for block in shell_blocks(section("Walk-through: a feed without `record_type`")):
        walk.run_block(block)
    assert re.search(r"\b10 passed\b", walk.out["pytest -q"])  # 9 standard tests and the plugin's 1
    # elt-sdk local run FILE: the key it uploads the file under, and where that key is routed
    [args] = walk.local_runs
    path = walk.cwd / args[0]
    assert path.stat().st_size > 0
    key = layout.bronze_key(path)
    assert key == "bronze/meter_readings/2025-06-01.jsonl"
    probe = ("import json, sys; from elt_sdk.plugins import load_registry; reg = load_registry(); "
             "first = json.loads(open(sys.argv[2]).readline()); "
             "print(json.dumps([getattr(reg.route_key(sys.argv[1]), 'name', None), "
             "getattr(reg.route_key('bronze/2025-06-01.jsonl'), 'name', None), "
             "getattr(reg.route_record(first), 'name', None)]))")
    proc = subprocess.run([sys.executable, "-c", probe, key, str(path)], env=walk.env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # under its folder: the dataset; outside it: record by record, and no record says meter_readings
    assert json.loads(proc.stdout) == ["meter_readings", None, None]


def test_the_public_api_table_names_every_public_name():
    import elt_sdk

    table = section("The public API and the deprecation policy")
    listed = set(re.findall(r"`(\w+)`", table))
    assert set(elt_sdk.__all__) <= listed, set(elt_sdk.__all__) - listed
    import elt_sdk.testing

    assert set(elt_sdk.testing.__all__) - {"TransformResult", "FieldStrategies"} <= listed


def test_the_rules_table_lists_every_rule_and_its_parameters():
    from elt_sdk.quality import CHECKS, REQUIRED

    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| (.*?) \|", section("Quality rules (`rules.json`)"), re.M)}
    assert set(rows) == set(CHECKS)
    for rule, params in REQUIRED.items():
        assert all(f"`{p}`" in rows[rule] for p in params), (rule, rows[rule])
