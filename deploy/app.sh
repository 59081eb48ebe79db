#!/bin/sh
# What cdk.json runs: the CDK app on the project's own virtualenv (made by `make setup`), whatever
# Python or virtualenv is active in the shell. ELT_PYTHON names another interpreter.
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
python=${ELT_PYTHON:-$here/../.venv/bin/python}
if [ ! -x "$python" ]; then
    echo "synth failed: $python not found: run 'make setup' in $(dirname -- "$here") first, or set ELT_PYTHON" >&2
    exit 1
fi
exec "$python" "$here/app.py" "$@"
