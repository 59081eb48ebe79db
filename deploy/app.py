"""The CDK app: ``cdk synth`` (or ``make synth``) works without Docker or an AWS account.

Settings come from the same definition the local runtime uses (``elt_sdk.settings``): defaults <
``elt-sdk.toml`` < ``ELT_*`` environment < CDK context (``-c glue_enabled=true``). ``cdk.json``
runs this through ``app.sh``, on the project's virtualenv. A setting or asset that cannot work
fails synth with one line saying why.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import aws_cdk as cdk  # noqa: E402

from elt_deploy.bundle import BundleError  # noqa: E402
from elt_deploy.stack import build_app  # noqa: E402


def main() -> int:
    # under the CDK CLI, CDK_OUTDIR is set; `python app.py` alone writes to deploy/cdk.out
    app = cdk.App(outdir=None if os.environ.get("CDK_OUTDIR") else str(HERE / "cdk.out"))
    try:
        build_app(app, HERE)
    except (BundleError, ValueError) as exc:  # SettingsError is a ValueError
        print(f"synth failed: {exc}", file=sys.stderr)
        return 1
    assembly = app.synth()
    _prune_stale_assets(Path(assembly.directory))
    return 0


def _prune_stale_assets(outdir: Path) -> None:
    """Remove asset copies no stack of this synth uses: each is a copy of a whole Lambda asset
    (~90 MiB), and CDK never removes the ones earlier synths left."""
    used = {entry["source"]["path"] for manifest in outdir.glob("*.assets.json")
            for entry in json.loads(manifest.read_text()).get("files", {}).values()}
    for stale in outdir.glob("asset.*"):
        if stale.name not in used:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()


if __name__ == "__main__":
    sys.exit(main())
