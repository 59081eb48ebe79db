"""Crash points for tests of interrupted operations: with ``ELT_SDK_CRASH_AT=<name>`` in its
environment, a process dies (``os._exit``, no cleanup, like a kill -9 or a Lambda timeout) when
it reaches the point of that name. Unset, a point costs one dictionary lookup."""
from __future__ import annotations

import os

ENV = "ELT_SDK_CRASH_AT"
EXIT_CODE = 86


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os._exit(EXIT_CODE)
