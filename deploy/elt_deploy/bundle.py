"""The Lambda assets, built without Docker.

Two assets, because the functions need very different things, and a third with
``silver_format = iceberg``:

- ``full`` (transform, quality check, compaction): the SDK, every installed dataset plugin (found
  through the same ``elt_sdk`` entry points the runtime uses) and their third-party dependencies
  (pyarrow, fastjsonschema, pluggy, ...).
- ``light`` (ingest, ops replay/poll): the SDK and pluggy only, no pyarrow and no plugin code.
  Ingest routes a key to its dataset with the plugin manifest below instead of loading plugins.
- ``iceberg`` (the Iceberg committer and maintenance): the SDK, pyarrow (with its S3 filesystem,
  which pyiceberg reads and writes through) and pyiceberg with its own dependencies, no plugin
  code (a table's schema comes from the silver files) and none of pyiceberg's optional extras
  (``pyiceberg-core`` and SQLAlchemy are not needed with the Glue catalog). So the transform's
  asset, and its cold start, are the same whatever the silver format.

Both carry ``elt_sdk/bundled.json``, the plugin manifest: every plugin's entry point and every
dataset's bronze prefix, recorded here at build time, so a cold start neither scans package
metadata (``importlib.metadata`` alone is ~30 ms to import) nor, for routing, imports plugins.

How: the SDK and the plugins are built as wheels from temporary copies of their sources (so no
``build/`` or ``*.egg-info`` lands in them); third-party dependencies, pinned to the versions
installed here, come as Lambda-platform wheels (``--platform manylinux_2_28_<arch>
--only-binary=:all: --python-version <runtime> --implementation cp``) from a wheelhouse under
``deploy/.bundle/wheels/``: downloaded from PyPI the first time, offline after that. boto3 is
left out (the runtime has it), and so are the CLI, the testing kit, the templates, the local
runtime and ``click``. pyarrow is trimmed of what Lambda never loads, shared objects are stripped
where a strip for the target exists, and every module is compiled to ``.pyc`` by the target's
Python with ``--invalidation-mode unchecked-hash`` (valid whatever timestamps unzipping gives the
sources). A size report is printed; an asset over the Lambda limit or the budget fails synth.

Each asset is cached under ``deploy/.bundle/<asset>-<arch>-py<version>-<key>`` (``full-arm64-py312-...``): the key hashes
every input, so synth is fast when nothing changed and the asset hash stays stable.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import Distribution, distribution, entry_points
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlparse

from packaging.requirements import Requirement

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
TRIM_VERSION = "3"
ASSETS = ("full", "light", "iceberg")
DEFAULT_ASSETS = ("full", "light")
"""Built for every stack; ``iceberg`` only with ``silver_format = iceberg``."""
PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
ARCHS = {"arm64": "aarch64", "x86_64": "x86_64"}
MANIFEST = "elt_sdk/bundled.json"
"""Where the plugin manifest goes in an asset; ``elt_sdk.bundled`` reads it."""
DEPLOYED_ROOT = "/var/task"
"""The code directory in Lambda: the file names compiled into the ``.pyc`` files."""

# elt-sdk's own requirements that only its command line uses.
CLI_ONLY_REQUIREMENTS = {"click"}
# `import elt_sdk` needs pluggy (``hookimpl``): the light asset's only third-party package.
LIGHT_REQUIREMENTS = {"pluggy"}
# The iceberg asset: the SDK's own requirements, and pyiceberg's (not its extras).
ICEBERG_REQUIREMENTS = {"pyiceberg"}
# Parts of the SDK no function loads: the command line, the testing kit, the plugin templates and
# the local runtime (a test checks that nothing left in an asset imports them).
SDK_TRIM = ("bin", "elt_sdk/cli", "elt_sdk/testing", "elt_sdk/templates", "elt_sdk/local", "elt_sdk/scaffold.py",
            "elt_sdk/bench.py", "elt_sdk/generate.py", "elt_sdk/summary.py", "elt_sdk/verify.py",
            "elt_sdk/aws/deployed.py", "elt_sdk/aws/target.py", "elt_sdk/aws/status.py", "elt_sdk/aws/dlq.py",
            "elt_sdk/query.py")
# Entry-point groups that name trimmed code.
TRIMMED_ENTRY_POINT_GROUPS = ("console_scripts", "pytest11")

# What Lambda never loads from pyarrow: headers, Cython sources, tests, and the Flight, ORC,
# cloud-filesystem and CUDA/Gandiva modules (S3 goes through boto3).
TRIM_GLOBS = (
    "pyarrow/include", "pyarrow/includes", "pyarrow/src", "pyarrow/tests", "pyarrow/conftest.py",
    "pyarrow/*.pyx", "pyarrow/*.pxd", "pyarrow/*.pxi", "pyarrow/**/*.pxd",
    "pyarrow/*flight*", "pyarrow/libarrow_flight*", "pyarrow/*orc*", "pyarrow/_azurefs*", "pyarrow/_gcsfs*",
    "pyarrow/_hdfs*", "pyarrow/_s3fs*", "pyarrow/libarrow_s3*", "pyarrow/_pyarrow_cpp_tests*", "pyarrow/*cuda*",
    "pyarrow/*gandiva*", "pyarrow/benchmark.py",
)
S3_GLOBS = ("pyarrow/_s3fs*", "pyarrow/libarrow_s3*")
"""Kept in the iceberg asset: pyiceberg's FileIO is pyarrow's S3 filesystem."""
ICEBERG_TRIM = ("pyiceberg/cli",)
# Never copied when a local project is built into a wheel.
SOURCE_IGNORE = {"build", "dist", "__pycache__", "node_modules", "cdk.out", "elt-out"}


class BundleError(RuntimeError):
    pass


@dataclass
class BundleReport:
    path: Path
    asset: str
    architecture: str
    python: str
    total_bytes: int
    by_distribution: dict[str, int]
    plugins: dict[str, str]  # entry point name -> distribution
    stripped: bool
    compiled: str  # the interpreter that wrote the .pyc files, or "" when none could
    cached: bool
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        mib = lambda n: f"{n / 1048576:7.1f} MiB"  # noqa: E731
        out = [f"Lambda asset {self.path.name} ({self.asset}: {self.architecture}, Python {self.python})"
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


def bundled_distributions(asset: str = "full") -> list[LocalDist]:
    """elt-sdk itself and (in the full asset) the distribution of every installed ``elt_sdk`` entry point."""
    names = {"elt-sdk"}
    if asset == "full":  # the iceberg asset carries no plugin: a table's schema comes from its files
        names.update(ep.dist.name for ep in entry_points(group="elt_sdk") if ep.dist is not None)
    out = []
    for name in sorted(names):
        dist = distribution(name)
        out.append(LocalDist(dist.metadata["Name"], dist.version, _source_dir(dist)))
    return out


def plugin_entry_points() -> dict[str, str]:
    return {ep.name: ep.dist.metadata["Name"] for ep in entry_points(group="elt_sdk") if ep.dist is not None}


def _pin(name: str) -> str:
    try:
        return f"{name}=={distribution(name).version}"
    except Exception:
        raise BundleError(f"{name} is required in Lambda (Python 3.12, Linux) but not installed here: "
                          f"pip install {name}") from None


def third_party_requirements(local: list[LocalDist], asset: str = "full") -> list[str]:
    """Runtime dependencies of the bundled distributions, pinned to the installed versions."""
    if asset == "light":
        return sorted(_pin(name) for name in LIGHT_REQUIREMENTS)
    ours = {d.name.lower() for d in local}
    env = {"python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    pins: dict[str, str] = {}
    queue = [d.name for d in local]
    if asset == "iceberg":
        pins.update({name: _pin(name) for name in ICEBERG_REQUIREMENTS})
        queue += sorted(ICEBERG_REQUIREMENTS)
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
            if name.lower() == "elt-sdk" and key in CLI_ONLY_REQUIREMENTS:
                continue
            pins[key] = _pin(req.name)
            queue.append(req.name)
    return sorted(pins.values())


def plugin_manifest() -> dict:
    """What ``elt_sdk.bundled`` reads in Lambda: each plugin's entry point, each dataset's routing.

    Every installed plugin is recorded (as every one is bundled): ``ELT_SDK_DISABLE_PLUGINS`` of
    the machine that builds is ignored; the function's own environment still applies.
    """
    from elt_sdk import plugins

    with _without_env(plugins.DISABLE_ENV):
        registry = plugins.load_registry()
    if registry.broken:
        raise BundleError("broken plugins would be bundled: "
                          + "; ".join(f"{b.name}: {b.error}" for b in registry.broken))
    eps = [{"name": ep.name, "value": ep.value, "distribution": ep.dist.metadata["Name"] if ep.dist else "?",
            "version": ep.dist.version if ep.dist else "?"}
           for ep in sorted(entry_points(group="elt_sdk"), key=lambda e: e.name)]
    datasets = [{"name": ds.name, "plugin": ds.plugin, "prefix": ds.prefix}
                for ds in sorted(registry.datasets.values(), key=lambda d: d.name)]
    return {"format": 1, "entry_points": eps, "datasets": datasets}


@contextmanager
def _without_env(name: str) -> Iterator[None]:
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        err = "\n".join(line for line in proc.stderr.splitlines() if "is ignored" not in line)
        raise BundleError(f"pip {args[0]} failed: {err.strip()[-2000:]}")


def build_wheel(source: Path, wheels_dir: Path) -> None:
    """A wheel of the project in ``source`` (see ``build_wheels``)."""
    build_wheels([source], wheels_dir)


def build_wheels(sources: list[Path], wheels_dir: Path) -> None:
    """Wheels of the projects in ``sources``, built from temporary copies (one pip run): setuptools
    writes ``build/`` and ``*.egg-info`` next to the sources it builds, and those are someone's sources."""
    with tempfile.TemporaryDirectory(prefix="elt-src-") as tmp:
        copies = []
        for i, source in enumerate(sources):
            copy = Path(tmp) / str(i) / source.name
            shutil.copytree(source, copy, ignore=_ignore_for_copy, symlinks=True)
            copies.append(str(copy))
        _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels_dir), *copies)


def _ignore_for_copy(folder: str, names: list[str]) -> set[str]:
    skip = set()
    for name in names:
        path = Path(folder, name)
        if (name in SOURCE_IGNORE or name.endswith(".egg-info") or name.startswith(".")
                or (path.is_dir() and (path / "pyvenv.cfg").exists())):
            skip.add(name)
    return skip


def _wheel_of(folder: Path, name: str) -> Path:
    norm = name.replace("-", "_").lower()
    [wheel] = [w for w in folder.glob("*.whl") if w.name.split("-")[0].lower() == norm]
    return wheel


def _wheel_record_digest(wheel: Path) -> str:
    """Hash of a wheel's RECORD (file hashes): stable where the zip's timestamps are not."""
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        return hashlib.sha256(zf.read(record)).hexdigest()


def find_python(version: str) -> str | None:
    """An interpreter of Lambda's Python ``version`` to compile the ``.pyc`` files with:
    ``ELT_BUNDLE_PYTHON``, this one, ``python<version>`` on PATH, or pyenv's newest of that version."""
    candidates = [os.environ.get("ELT_BUNDLE_PYTHON"), sys.executable, shutil.which(f"python{version}"),
                  *map(str, sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"), reverse=True))]
    for candidate in candidates:
        if candidate and _python_version(candidate) == version:
            return candidate
    return None


def _python_version(python: str) -> str | None:
    try:
        proc = subprocess.run([python, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _magic(python: str) -> str:
    """The bytecode magic number of ``python``: .pyc files are valid for exactly that."""
    proc = subprocess.run([python, "-I", "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def build_bundle(cache_root: Path, *, asset: str = "full", architecture: str = "arm64", python: str = "3.12",
                 budget_mb: int | None = None, log: Callable[[str], None] = print) -> BundleReport:
    """One asset (see ``build_assets``)."""
    return build_assets(cache_root, assets=(asset,), architecture=architecture, python=python, budget_mb=budget_mb,
                        log=log)[asset]


def build_assets(cache_root: Path, *, assets: tuple[str, ...] = DEFAULT_ASSETS, architecture: str = "arm64",
                 python: str = "3.12", budget_mb: int | None = None,
                 log: Callable[[str], None] = print) -> dict[str, BundleReport]:
    """Build (or find in the cache) each of ``assets``; fail over the Lambda limit or ``budget_mb``."""
    if architecture not in ARCHS:
        raise BundleError(f"architecture {architecture!r}: choose one of {', '.join(ARCHS)}")
    unknown = [a for a in assets if a not in ASSETS]
    if unknown:
        raise BundleError(f"asset {unknown[0]!r}: choose one of {', '.join(ASSETS)}")
    manifest = plugin_manifest()
    compiler = find_python(python)
    magic = _magic(compiler) if compiler else None
    locals_ = {asset: bundled_distributions(asset) for asset in assets}
    reports = {}
    with tempfile.TemporaryDirectory(prefix="elt-wheels-") as tmp:
        sources = {d.name: d.source for dists in locals_.values() for d in dists if d.source is not None}
        build_wheels(sorted(sources.values()), Path(tmp))  # each distribution once, for every asset
        wheels = {name: _wheel_of(Path(tmp), name) for name in sources}
        for asset in assets:
            local = locals_[asset]
            asset_wheels = sorted(wheels[d.name] for d in local if d.source is not None)
            index_pins = [f"{d.name}=={d.version}" for d in local if d.source is None]
            reports[asset] = _asset(cache_root, asset, architecture, python, third_party_requirements(local, asset),
                                    index_pins, asset_wheels, manifest, compiler, magic, log)
    for report in reports.values():
        for line in report.lines():
            log(line)
    limit = min(LAMBDA_UNZIPPED_LIMIT, (budget_mb or 10**6) * 1024 * 1024)
    for report in reports.values():
        if report.total_bytes > limit:
            which = "the Lambda limit" if limit == LAMBDA_UNZIPPED_LIMIT else f"the budget of {budget_mb} MiB (context bundle_budget_mb)"
            raise BundleError(f"the {report.asset} Lambda asset is {report.total_bytes / 1048576:.1f} MiB unzipped, "
                              f"over {which}: drop unused plugins or dependencies, or raise the budget")
    return reports


def _asset(cache_root: Path, asset: str, architecture: str, python: str, requirements: list[str],
           index_pins: list[str], wheels: list[Path], manifest: dict, compiler: str | None, magic: str | None,
           log: Callable[[str], None]) -> BundleReport:
    platform = ARCHS[architecture]
    key_material = json.dumps({
        "asset": asset, "arch": architecture, "python": python, "trim": TRIM_VERSION,
        "requirements": requirements, "index": index_pins, "manifest": manifest,
        "wheels": {w.name: _wheel_record_digest(w) for w in wheels}, "pyc": magic,
    }, sort_keys=True)
    key = hashlib.sha256(key_material.encode()).hexdigest()[:16]
    stem = f"{asset}-{architecture}-py{python.replace('.', '')}"  # no dot: CDK would take the rest for an extension
    target = cache_root / f"{stem}-{key}"
    info_file = cache_root / f"{stem}-{key}.json"
    with _cache_lock(cache_root):
        cached = target.is_dir() and info_file.exists()
        if not cached:
            wheelhouse = cache_root / "wheels" / f"{platform}-py{python}"
            _fetch(wheelhouse, platform, python, requirements + index_pins, log)
            staging = Path(tempfile.mkdtemp(prefix=f".staging-{stem}-", dir=cache_root))
            try:
                info = _install(staging, wheelhouse, platform, python, requirements + index_pins, wheels, manifest,
                                compiler, asset)
                if target.exists():
                    shutil.rmtree(target)
                staging.rename(target)
                info_file.write_text(json.dumps({**info, "inputs": json.loads(key_material)}, indent=1, sort_keys=True))
            finally:
                shutil.rmtree(staging, ignore_errors=True)  # gone already when renamed
            legacy = [*cache_root.glob(f"{architecture}-py{python}-*"),  # the layouts of earlier versions
                      *cache_root.glob(f"{asset}-{architecture}-py{python}-*")]
            for old in [*cache_root.glob(f"{stem}-*"), *legacy]:  # earlier inputs: never used again
                if old not in (target, info_file):
                    shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        info = json.loads(info_file.read_text())
    notes = []
    if not info["stripped"]:
        notes.append(f"no strip for {platform} on this machine: shared objects left unstripped")
    if not info["compiled"]:
        notes.append(f"no Python {python} found to precompile .pyc (install python{python} or set "
                     "ELT_BUNDLE_PYTHON): every cold start compiles the sources")
    sizes = _sizes(target)
    return BundleReport(target, asset, architecture, python, sum(sizes.values()), sizes,
                        plugin_entry_points() if asset == "full" else {}, info["stripped"], info["compiled"],
                        cached, notes)


@contextmanager
def _cache_lock(cache_root: Path) -> Iterator[None]:
    """One builder at a time in a cache folder: two synths at once (two terminals, parallel test
    workers) would otherwise build the same asset side by side, the second replacing the folder
    the first had just put in place. The second waits, then finds the asset built. (A build of
    other inputs still removes the folders of earlier ones, which a synth of those inputs may be
    reading at that moment. No lock where ``fcntl`` is missing, as on Windows.)"""
    cache_root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(cache_root / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cross(platform: str, python: str) -> list[str]:
    # manylinux_2_28 first: with manylinux2014 alone pip silently picks an old pyarrow
    return ["--platform", f"manylinux_2_28_{platform}", "--platform", f"manylinux2014_{platform}",
            "--only-binary=:all:", "--python-version", python, "--implementation", "cp"]


def _fetch(wheelhouse: Path, platform: str, python: str, pins: list[str], log: Callable[[str], None]) -> None:
    """The Lambda-platform wheels of ``pins`` in ``wheelhouse``: from PyPI only when one is missing."""
    if not pins:
        return
    wheelhouse.mkdir(parents=True, exist_ok=True)
    try:
        _pip("download", "--no-deps", "--no-index", "--find-links", str(wheelhouse), "-d", str(wheelhouse),
             *_cross(platform, python), *pins)
        return
    except BundleError:
        pass
    log(f"fetching Lambda-platform wheels ({platform}, Python {python}) into {wheelhouse}: {' '.join(pins)}")
    try:
        _pip("download", "--no-deps", "-d", str(wheelhouse), *_cross(platform, python), *pins)
    except BundleError as exc:
        raise BundleError(f"the Lambda-platform wheels are not in {wheelhouse} and could not be downloaded "
                          f"(the first synth for an architecture needs PyPI): {exc}") from None


def _install(staging: Path, wheelhouse: Path, platform: str, python: str, pins: list[str], wheels: list[Path],
             manifest: dict, compiler: str | None, asset: str = "full") -> dict:
    flags = ["--no-deps", "--no-compile", *_cross(platform, python), "--target", str(staging)]
    if pins:
        _pip("install", "--no-index", "--find-links", str(wheelhouse), *flags, *pins)
    _pip("install", *flags, *map(str, wheels))
    for stray in staging.glob("*.dist-info/direct_url.json"):
        stray.unlink()  # holds a temporary path: would change the asset hash
    _trim(staging, asset)
    stripped = _strip(staging, platform)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    _prune_records(staging)
    compiled = _compile(staging, compiler) if compiler else ""
    for path in [staging, *staging.rglob("*")]:  # Lambda's runtime user must read everything
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    return {"stripped": stripped, "compiled": compiled}


def _trim(root: Path, asset: str = "full") -> None:
    globs = [g for g in TRIM_GLOBS if asset != "iceberg" or g not in S3_GLOBS]
    for pattern in (*globs, *SDK_TRIM, *(ICEBERG_TRIM if asset == "iceberg" else ())):
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
    for path in root.rglob("__pycache__"):  # pip's, for the build machine's Python
        shutil.rmtree(path)
    for eps in root.glob("*.dist-info/entry_points.txt"):
        _drop_entry_point_groups(eps)


def _drop_entry_point_groups(path: Path) -> None:
    """Remove the groups naming trimmed code (``elt-sdk`` script, pytest plugin) from entry_points.txt."""
    out, keep = [], True
    for line in path.read_text().splitlines():
        if line.startswith("["):
            keep = line.strip("[] ") not in TRIMMED_ENTRY_POINT_GROUPS
        if keep:
            out.append(line)
    text = "\n".join(out).strip()
    path.write_text(text + "\n") if text else path.unlink()


def _prune_records(root: Path) -> None:
    """RECORD lists only what is left, so the asset's metadata tells the truth about its files."""
    for record in root.glob("*.dist-info/RECORD"):
        lines = [ln for ln in record.read_text().splitlines()
                 if ln and ((root / ln.rsplit(",", 2)[0]).exists() or ln.rsplit(",", 2)[0].endswith("RECORD"))]
        record.write_text("\n".join(lines) + "\n")


def _strip(root: Path, platform: str) -> bool:
    """Strip shared objects where a strip for the target exists."""
    tool = shutil.which(f"{platform}-linux-gnu-strip") or (shutil.which("strip") if os.uname().machine == platform else None)
    if tool is None:
        return False
    for so in root.rglob("*.so*"):
        if so.is_file():
            subprocess.run([tool, "--strip-unneeded", str(so)], capture_output=True)
    return True


def _compile(root: Path, python: str) -> str:
    """``.pyc`` for Lambda's Python that stay valid whatever timestamps unzipping gives the sources
    (``unchecked-hash``: never compared with the source), naming ``/var/task/...`` files."""
    proc = subprocess.run([python, "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                           "-s", str(root), "-p", DEPLOYED_ROOT, str(root)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BundleError(f"compiling the asset with {python} failed: {(proc.stdout + proc.stderr).strip()[-2000:]}")
    version = subprocess.run([python, "-I", "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return f"CPython {version}"


def _sizes(root: Path) -> dict[str, int]:
    """Bytes per distribution, from each dist-info's RECORD (what is left after trimming), with
    each module's ``.pyc``."""
    sizes: dict[str, int] = {}
    claimed: set[Path] = set()
    for info in sorted(root.glob("*.dist-info")):
        name = info.name[: -len(".dist-info")]
        total = 0
        for line in (info / "RECORD").read_text().splitlines():
            rel = line.rsplit(",", 2)[0]
            path = (root / rel).resolve()
            related = [path]
            if path.suffix == ".py":
                related += path.parent.glob(f"__pycache__/{path.stem}.*.pyc")
            for p in related:
                if p.is_file() and p not in claimed:
                    claimed.add(p)
                    total += p.stat().st_size
        sizes[name] = total
    other = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.resolve() not in claimed)
    if other:
        sizes["(other)"] = other
    return sizes


def imports_of_trimmed(root: Path) -> list[str]:
    """Modules left in an asset that import a part of the SDK the asset does not carry."""
    trimmed = [t.removesuffix(".py").replace("/", ".") for t in SDK_TRIM if t.startswith("elt_sdk/")]
    found = []
    for path in root.rglob("*.py"):
        try:
            tree = ast.parse(path.read_bytes())
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if any(name == t or name.startswith(t + ".") for t in trimmed):
                    found.append(f"{path.relative_to(root)}: {name}")
    return sorted(set(found))


def main(argv: list[str] | None = None) -> int:
    """``make bundle``: build the assets (fetching the Lambda-platform wheels the first time), so
    every synth after it runs offline."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m elt_deploy.bundle", description=main.__doc__)
    parser.add_argument("--architecture", action="append", choices=sorted(ARCHS),
                        help="repeatable; default: both")
    parser.add_argument("--python", default="3.12", help="Lambda's Python version (default 3.12)")
    parser.add_argument("--budget-mb", type=int, default=None, help="fail when an asset is larger")
    parser.add_argument("--iceberg", action="store_true", help="also the iceberg asset (silver_format = iceberg)")
    args = parser.parse_args(argv)
    try:
        for arch in args.architecture or sorted(ARCHS):
            build_assets(Path(__file__).resolve().parent.parent / ".bundle", architecture=arch, python=args.python,
                         budget_mb=args.budget_mb, log=print, assets=ASSETS if args.iceberg else DEFAULT_ASSETS)
    except BundleError as exc:
        print(f"bundle failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
