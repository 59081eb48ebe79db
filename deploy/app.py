"""The CDK app: ``cdk synth`` (or ``python app.py``) works offline, without Docker.

Settings come from the same definition the local runtime uses (``elt_sdk.settings``): defaults <
``elt-sdk.toml`` < ``ELT_*`` environment < CDK context (``-c glue_enabled=true``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import aws_cdk as cdk  # noqa: E402

from elt_deploy.stack import build_app  # noqa: E402


def main() -> None:
    # under the CDK CLI, CDK_OUTDIR is set; `python app.py` alone writes to deploy/cdk.out
    app = cdk.App(outdir=None if os.environ.get("CDK_OUTDIR") else str(HERE / "cdk.out"))
    build_app(app, HERE)
    app.synth()


if __name__ == "__main__":
    main()
