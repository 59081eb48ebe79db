"""``elt-sdk local up``: the local pipeline kept running until it is stopped, and found again by
the commands run from the same folder.

The stack is one process serving a ``LocalRuntime`` (the embedded endpoint, the resources from
``Settings``, the ingest trigger, the transform pollers). Once it serves, it writes
``.elt-local/state.json`` in its working folder (its pid, endpoint URL, settings and resources);
every second it writes ``.elt-local/stats.json`` (what its functions did, and the age of the
oldest message of each queue, which the embedded endpoint has no CloudWatch to tell); its logs go
to ``.elt-local/logs/``. SIGTERM or Ctrl-C stops it and it removes its state file. A state file
whose process is gone (a crash, a reboot) is *stale*: commands report it, ``local down`` and the
next ``local up`` remove it. Everything lives in the process's memory: stopping the stack
discards its buckets and queues.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from elt_sdk.processes import pid_alive

from elt_sdk.settings import Settings

STATE_DIR = ".elt-local"
STATE_FILE = "state.json"
STATS_FILE = "stats.json"
LOG_DIR = "logs"


class NotRunning(LookupError):
    """No local stack in this folder."""


class StaleStack(NotRunning):
    """A state file whose process is gone."""

    def __init__(self, state: "StackState"):
        super().__init__(f"stale local stack state in {state_dir(Path(state.folder))}: pid {state.pid} is not running "
                         f"(it was serving {state.endpoint_url}); 'elt-sdk local down' removes it, 'elt-sdk local up' "
                         "starts a new stack")
        self.state = state


@dataclass
class StackState:
    pid: int
    endpoint_url: str
    region: str
    settings: dict[str, Any]
    resources: dict[str, str]
    started_at: float
    workers: int
    folder: str
    logs: str
    functions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def alive(self) -> bool:
        return pid_alive(self.pid)

    def target(self) -> Any:
        """This stack as a ``StackTarget`` (the default target of operational commands)."""
        from elt_sdk.aws.target import LOCAL, StackTarget

        return StackTarget(LOCAL, f"local stack {self.endpoint_url} (pid {self.pid})", dict(self.resources),
                           Settings(**self.settings), endpoint_url=self.endpoint_url, functions=dict(self.functions))


def state_dir(folder: Path | None = None) -> Path:
    return (folder or Path.cwd()) / STATE_DIR


def read_state(folder: Path | None = None) -> StackState | None:
    path = state_dir(folder) / STATE_FILE
    try:
        return StackState(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise NotRunning(f"{path} is not a local stack state file ({exc}); remove it") from None


def running(folder: Path | None = None) -> StackState:
    """The live stack of ``folder``; NotRunning if none, StaleStack if its process is gone."""
    state = read_state(folder)
    if state is None:
        raise NotRunning(f"no local stack running in {folder or Path.cwd()} (start one with 'elt-sdk local up')")
    if not state.alive:
        raise StaleStack(state)
    return state


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def serve(settings: Settings, *, port: int = 0, workers: int = 2, folder: Path | None = None,
          ready: Callable[[StackState], None] | None = None, stats_every_s: float = 1.0) -> int:
    """Run the stack until SIGTERM or Ctrl-C; 0 when stopped, 1 when its pollers died."""
    from elt_sdk.local.runtime import LocalRuntime
    from elt_sdk.local.target import functions

    folder = (folder or Path.cwd()).resolve()
    d = state_dir(folder)
    (d / LOG_DIR).mkdir(parents=True, exist_ok=True)
    state_path = d / STATE_FILE
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
        stop["now"] = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    try:
        with (d / LOG_DIR / "pipeline.jsonl").open("a") as log, \
                LocalRuntime(settings, workers=workers, log_stream=log, port=port) as rt:
            res = rt.resources
            state = StackState(
                pid=os.getpid(), endpoint_url=rt.endpoint.url, region=settings.region, settings=settings.to_dict(),
                resources={"bronze_bucket": res.bronze_bucket, "silver_bucket": res.silver_bucket,
                           "quarantine_bucket": res.quarantine_bucket or res.silver_bucket, "queue_url": res.queue_url,
                           "dlq_url": res.dlq_url, "idempotency_table": res.table,
                           "events_queue_url": res.events_queue_url, "ingest_lambda": rt.ingest_function,
                           "transform_lambda": rt.transform_function, **res.iceberg_outputs()},
                started_at=time.time(), workers=workers, folder=str(folder), logs=str(d / LOG_DIR),
                functions=functions(settings.name_prefix, f"in child processes of the local stack (pid {os.getpid()})"))
            _write_json(state_path, state.to_dict())
            if ready is not None:
                ready(state)
            while not stop["now"]:
                _write_json(d / STATS_FILE, stats(rt, state))
                if rt.error is not None:
                    print(f"the local stack's pollers stopped: {type(rt.error).__name__}: {rt.error}", file=sys.stderr)
                    code = 1
                    break
                _sleep_until(stop, stats_every_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        current = read_state(folder) if state_path.exists() else None
        if current is not None and current.pid == os.getpid():
            state_path.unlink(missing_ok=True)
            (d / STATS_FILE).unlink(missing_ok=True)
    return code


def _sleep_until(stop: dict[str, bool], seconds: float) -> None:
    deadline = time.time() + seconds
    while not stop["now"] and time.time() < deadline:
        time.sleep(0.05)


def stats(rt: Any, state: StackState) -> dict[str, Any]:
    """What the stack's functions did so far, and how old each queue's oldest message is."""
    def fn(s: Any) -> dict[str, Any]:
        with s.lock:
            return {"invocations": s.invocations, "messages": s.messages, "succeeded": s.succeeded,
                    "failed": s.failed, "errors": s.errors[-5:]}

    return {"pid": state.pid, "updated_at": time.time(), "ingest": fn(rt.ingest.stats),
            "ingest_given_up": len(rt.ingest.given_up), "transform": fn(rt.esm.stats),
            "oldest_message_age_s": rt.endpoint.oldest_message_ages([state.resources[k] for k in
                                                                      ("queue_url", "dlq_url", "events_queue_url")])}


def read_stats(folder: Path | None = None) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir(folder) / STATS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


def start_detached(argv: list[str], folder: Path | None = None, timeout_s: float = 60.0) -> StackState:
    """Start ``elt-sdk <argv>`` (a foreground ``local up``) as a background process whose output
    goes to ``.elt-local/logs/stack.log``; return its state once it serves."""
    folder = (folder or Path.cwd()).resolve()
    logs = state_dir(folder) / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "stack.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "elt_sdk.cli", *argv], cwd=folder, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + timeout_s
    while True:
        state = read_state(folder)
        if state is not None and state.pid == proc.pid:
            return state
        code = proc.poll()
        if code is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"the local stack exited ({code}) before serving: " + " | ".join(tail))
        if time.time() > deadline:
            proc.terminate()
            raise RuntimeError(f"the local stack did not start within {timeout_s:.0f}s (see {log_path})")
        time.sleep(0.1)


def stop(folder: Path | None = None, timeout_s: float = 30.0) -> StackState:
    """Stop the stack of ``folder`` (SIGTERM, then wait for it to remove its state); a stale state
    file is removed and raised as StaleStack."""
    state = read_state(folder)
    if state is None:
        raise NotRunning(f"no local stack running in {folder or Path.cwd()}")
    path = state_dir(folder) / STATE_FILE
    if not state.alive:
        path.unlink(missing_ok=True)
        (state_dir(folder) / STATS_FILE).unlink(missing_ok=True)
        raise StaleStack(state)
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.time() + timeout_s
    while pid_alive(state.pid) and path.exists():
        if time.time() > deadline:
            raise TimeoutError(f"the local stack (pid {state.pid}) did not stop within {timeout_s:.0f}s")
        time.sleep(0.05)
    deadline = time.time() + 5
    while pid_alive(state.pid) and time.time() < deadline:  # its state is gone; let it finish exiting
        time.sleep(0.05)
    path.unlink(missing_ok=True)
    return state
