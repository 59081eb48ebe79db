"""Whether a process that wrote a lease or a state file is still alive on this machine (the local
stack's state file, a compaction run's lease)."""
from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a live elt-sdk process? (A reused pid running something else is not.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: not our stack
        return False
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            if "\nState:\tZ" in (proc / "status").read_text():  # exited, not yet reaped
                return False
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        return b"elt_sdk" in cmdline or b"elt-sdk" in cmdline
    return True
