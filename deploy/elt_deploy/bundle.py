"""The Lambda asset, built without Docker.

The SDK and every installed dataset plugin (found through the same ``elt_sdk`` entry points the
runtime uses) are built as wheels; their third-party dependencies are installed for the Lambda
platform with pip's cross-platform flags (``--platform manylinux_2_28_<arch> --only-binary=:all:
--python-version <runtime> --implementation cp --no-compile``), pinned to the versions installed
here, so the bundle runs what the tests ran. boto3 is left out: the Lambda runtime has it. Then
parts of pyarrow Lambda never loads are trimmed, shared objects are stripped where a strip for the
target exists, a size report is printed, and an oversized bundle fails synth with a clear message.

The result is cached under ``deploy/.bundle/<key>``: the key hashes every input, so synth is fast
when nothing changed and the asset hash stays stable.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import Distribution, distribution, entry_points
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.requirements import Requirement

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
TRIM_VERSION = "1"
PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
ARCHS = {"arm64": "aarch64", "x86_64": "x86_64"}

# What Lambda never loads from pyarrow: headers, Cython sources, tests, and the Flight, ORC,
# cloud-filesystem and CUDA/Gandiva modules (S3 goes through boto3).
TRIM_GLOBS = (
    "pyarrow/include", "pyarrow/includes", "pyarrow/src", "pyarrow/tests", "pyarrow/conftest.py",
    "pyarrow/*.pyx", "pyarrow/*.pxd", "pyarrow/*.pxi", "pyarrow/**/*.pxd",
    "pyarrow/*flight*", "pyarrow/libarrow_flight*", "pyarrow/*orc*", "pyarrow/_azurefs*", "pyarrow/_gcsfs*",
    "pyarrow/_hdfs*", "pyarrow/_s3fs*", "pyarrow/libarrow_s3*", "pyarrow/_pyarrow_cpp_tests*", "pyarrow/*cuda*",
    "pyarrow/*gandiva*", "pyarrow/benchmark.py",
)


class BundleError(RuntimeError):
    pass


@dataclass
class BundleReport:
    path: Path
    architecture: str
    python: str
    total_bytes: int
    by_distribution: dict[str, int]
    plugins: dict[str, str]  # entry point name -> distribution
    stripped: bool
    cached: bool
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        mib = lambda n: f"{n / 1048576:7.1f} MiB"  # noqa: E731
        out = [f"Lambda bundle {self.path.name} ({self.architecture}, Python {self.python})"
               f"{' [cached]' if self.cached else ''}:"]
        for name, size in sorted(self.by_distribution.items(), key=lambda kv: -kv[1]):
            out.append(f"  {mib(size)}  {name}")
        out.append(f"  {mib(self.total_bytes)}  total unzipped (Lambda limit {LAMBDA_UNZIPPED_LIMIT // 1048576} MiB)")
        out += [f"  note: {n}" for n in self.notes]
        return out


@dataclass(frozen=True)
class LocalDist:
    name: str
    version: str
    source: Path | None  # a local project folder, or None for an index install


def _source_dir(dist: Distribution) -> Path | None:
    raw = dist.read_text("direct_url.json")
    if not raw:
        return None
    info = json.loads(raw)
    if "dir_info" not in info:
        return None
    return Path(unquote(urlparse(info["url"]).path))


def bundled_distributions() -> list[LocalDist]:
    """elt-sdk itself and the distribution of every installed ``elt_sdk`` entry point."""
    names = {"elt-sdk"}
    names.update(ep.dist.name for ep in entry_points(group="elt_sdk") if ep.dist is not None)
    out = []
    for name in sorted(names):
        dist = distribution(name)
        out.append(LocalDist(dist.metadata["Name"], dist.version, _source_dir(dist)))
    return out


def plugin_entry_points() -> dict[str, str]:
    return {ep.name: ep.dist.metadata["Name"] for ep in entry_points(group="elt_sdk") if ep.dist is not None}


def third_party_requirements(local: list[LocalDist]) -> list[str]:
    """Runtime dependencies of the bundled distributions, pinned to the installed versions."""
    ours = {d.name.lower() for d in local}
    env = {"python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    pins: dict[str, str] = {}
    queue = [d.name for d in local]
    seen = set()
    while queue:
        name = queue.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        for raw in distribution(name).requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            key = req.name.lower()
            if key in ours or key in PROVIDED_BY_RUNTIME:
                continue
            pins[key] = f"{req.name}=={distribution(req.name).version}"
            queue.append(req.name)
    return sorted(pins.values())


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        err = "\n".join(line for line in proc.stderr.splitlines() if "is ignored" not in line)
        raise BundleError(f"pip {args[0]} failed: {err.strip()[-2000:]}")


def _wheel_record_digest(wheel: Path) -> str:
    """Hash of a wheel's RECORD (file hashes): stable where the zip's timestamps are not."""
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        return hashlib.sha256(zf.read(record)).hexdigest()


def build_bundle(cache_root: Path, *, architecture: str = "arm64", python: str = "3.12",
                 budget_mb: int | None = None, log=print) -> BundleReport:
    if architecture not in ARCHS:
        raise BundleError(f"architecture {architecture!r}: choose one of {', '.join(ARCHS)}")
    local = bundled_distributions()
    requirements = third_party_requirements(local)
    with tempfile.TemporaryDirectory(prefix="elt-wheels-") as tmp:
        wheels_dir = Path(tmp)
        index_pins = []
        for d in local:
            if d.source is not None:
                _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels_dir), str(d.source))
            else:
                index_pins.append(f"{d.name}=={d.version}")
        wheels = sorted(wheels_dir.glob("*.whl"))
        key_material = json.dumps({
            "arch": architecture, "python": python, "trim": TRIM_VERSION, "requirements": requirements,
            "index": index_pins, "wheels": {w.name: _wheel_record_digest(w) for w in wheels},
        }, sort_keys=True)
        key = hashlib.sha256(key_material.encode()).hexdigest()[:16]
        target = cache_root / f"{architecture}-py{python}-{key}"
        cached = (target / ".complete").exists()
        if not cached:
            cache_root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_root))
            try:
                _install(staging, ARCHS[architecture], python, requirements + index_pins, wheels)
                (staging / ".complete").write_text(key_material)
                if target.exists():
                    shutil.rmtree(target)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)  # gone already when renamed
            for old in cache_root.glob(f"{architecture}-py{python}-*"):  # earlier inputs: never used again
                if old != target:
                    shutil.rmtree(old, ignore_errors=True)
    stripped = (target / ".stripped").exists()
    notes = [] if stripped else [f"no strip for {ARCHS[architecture]} on this machine: shared objects left unstripped"]
    sizes = _sizes(target)
    report = BundleReport(target, architecture, python, sum(sizes.values()), sizes, plugin_entry_points(),
                          stripped, cached, notes)
    for line in report.lines():
        log(line)
    limit = min(LAMBDA_UNZIPPED_LIMIT, (budget_mb or 10**6) * 1024 * 1024)
    if report.total_bytes > limit:
        which = "the Lambda limit" if limit == LAMBDA_UNZIPPED_LIMIT else f"the budget of {budget_mb} MiB (context bundle_budget_mb)"
        raise BundleError(f"the Lambda bundle is {report.total_bytes / 1048576:.1f} MiB unzipped, over {which}: "
                          "drop unused plugins or dependencies, or raise the budget")
    return report


def _install(staging: Path, platform: str, python: str, requirements: list[str], wheels: list[Path]) -> None:
    cross = ["--no-compile", "--platform", f"manylinux_2_28_{platform}", "--platform", f"manylinux2014_{platform}",
             "--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--target", str(staging)]
    if requirements:
        _pip("install", *cross, *requirements)
    _pip("install", "--no-deps", *cross, *map(str, wheels))
    for stray in staging.glob("*.dist-info/direct_url.json"):
        stray.unlink()  # holds a temporary path: would change the asset hash
    _trim(staging)
    _strip(staging, platform)


def _trim(root: Path) -> None:
    for pattern in TRIM_GLOBS:
        for path in root.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in root.rglob("*"):  # pip copies symlinked libraries: keep only the SONAME file
        name = path.name
        if ".so" in name and path.is_file() and name.startswith("lib"):
            base, _, suffix = name.partition(".so")
            soname = root / path.parent.relative_to(root) / f"{base}.so.{suffix.lstrip('.').split('.')[0]}" \
                if suffix.strip(".") else None
            if suffix.count(".") > 1 and soname is not None and soname.exists() and soname != path:
                path.unlink()
            elif suffix == "" and any(path.parent.glob(f"{base}.so.*")):
                path.unlink()
    for path in root.rglob("__pycache__"):
        shutil.rmtree(path)


def _strip(root: Path, platform: str) -> None:
    """Strip shared objects where a strip for the target exists; ``.stripped`` records it."""
    tool = shutil.which(f"{platform}-linux-gnu-strip") or (shutil.which("strip") if os.uname().machine == platform else None)
    if tool is None:
        return
    for so in root.rglob("*.so*"):
        if so.is_file():
            subprocess.run([tool, "--strip-unneeded", str(so)], capture_output=True)
    (root / ".stripped").write_text(tool)


def _sizes(root: Path) -> dict[str, int]:
    """Bytes per distribution, from each dist-info's RECORD (what is left after trimming)."""
    sizes: dict[str, int] = {}
    claimed: set[Path] = set()
    for info in sorted(root.glob("*.dist-info")):
        name = info.name[: -len(".dist-info")]
        total = 0
        for line in (info / "RECORD").read_text().splitlines():
            rel = line.rsplit(",", 2)[0]
            path = (root / rel).resolve()
            if path.is_file() and path not in claimed:
                claimed.add(path)
                total += path.stat().st_size
        sizes[name] = total
    other = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.resolve() not in claimed)
    if other:
        sizes["(other)"] = other
    return sizes
