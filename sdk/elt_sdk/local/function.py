"""A function of the local pipeline in processes of its own, as Lambda runs each function apart.

``FunctionProcesses`` starts ``python -m elt_sdk.local.function SPEC`` (once, or a few times
for the transform function) and reads, line by line, what their pollers did. A child runs the
event source of ``esm.py`` (``AsyncInvoker`` for ingest, ``EventSourceMapping`` for transform
and the committer) around the Lambda handler, unchanged, with the parent's environment (the
endpoint, the resources). In one process the handlers, the pollers and the uploads would share
one interpreter lock: a local run of many small objects spent most of its time waiting for it
while the second core idled.

The child's stdout carries its account (one JSON line per poll that did something: counts,
results, errors, the events it gave up on, the S3 events it delivered, and the receipt handles of
the messages it received and settled); its stderr, the handlers' JSON logs, which the parent
copies into its log stream. Closing the child's stdin asks it to stop: it ends after the
invocations in progress, and it also stops when the parent dies.

A child that dies during an invocation (a native library's crash, the OOM killer) is what a
crashed Lambda execution environment is: its invocations fail and another process takes its
place. The messages it held come back, at once here (Lambda waits out their visibility timeout),
so SQS counts their receives and a message that crashes every process it meets ends in the DLQ.
A child that dies before it polled at all (it cannot start) is the runtime's error instead.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import IO, Any

from elt_sdk.local.esm import Stats

INGEST, TRANSFORM, COMMITTER = "ingest", "transform", "committer"
MAX_CRASHES = 100
"""Replacements of a function's processes before the runtime gives up (a message that crashes
every process it meets dies ``max_receive_count`` times, then sits in the DLQ)."""


@dataclass
class FunctionSpec:
    """What the child runs: which handler, fed from which queue, how many pollers."""
    kind: str
    queue_url: str
    function_name: str
    timeout_s: int
    region: str = ""
    batch_size: int = 10
    pollers: int = 1
    """Pollers in the process, each a thread (the ingest poller hands its events to eight threads,
    as S3's asynchronous invocations overlap)."""
    wait_s: int = 1


class FunctionProcesses:
    """The parent's view of a function running in ``processes`` processes that share
    ``spec.pollers`` between them: ``stats``, ``given_up`` and ``delivered`` as ``AsyncInvoker``
    and ``EventSourceMapping`` keep them, summed over the processes as they report; ``error`` once
    one failed."""

    def __init__(self, spec: FunctionSpec, log_stream: IO[str] | None = None, *, processes: int = 1,
                 sqs: Any = None):
        self.spec = spec
        self.stats = Stats()
        self.given_up: list[dict[str, Any]] = []
        self.delivered: dict[str, str] = {}
        self.error: BaseException | None = None
        self.cpu_s = 0.0
        """The CPU seconds the processes used, once they have stopped."""
        self.crashes = 0
        """Processes that died during an invocation (and were replaced, unless stopping)."""
        self._sqs = sqs  # to make a dead process's messages visible again (None: they wait out their timeout)
        self._stopping = self._killing = False
        self._log_stream = log_stream
        self._log_lock = threading.Lock()
        self._lock = threading.Lock()  # the children, and whether more may start
        self._children: list[_Child] = []
        processes = max(min(processes, spec.pollers), 1)
        try:
            for i in range(processes):  # the pollers shared out between the processes
                self._spawn(spec.pollers // processes + (i < spec.pollers % processes))
        except BaseException:
            self.kill()
            raise

    @property
    def procs(self) -> list[subprocess.Popen]:
        """Every process started, replacements included (the dead ones stay listed)."""
        with self._lock:
            return [c.proc for c in self._children]

    def _spawn(self, share: int) -> None:
        with self._lock:  # never once a stop began: request_stop and kill would not see it
            if self._stopping:
                return
            # a session of its own: Ctrl-C reaches the parent, which stops them in order
            child = _Child(subprocess.Popen(
                [sys.executable, "-m", "elt_sdk.local.function", json.dumps(asdict(replace(self.spec, pollers=share)))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                errors="replace", start_new_session=True), share)
            child.readers = [threading.Thread(target=target, args=(child,), daemon=True,
                                              name=f"elt-{self.spec.kind}-{what}-{child.proc.pid}")
                             for target, what in ((self._read_account, "account"), (self._copy_logs, "logs"))]
            self._children.append(child)
        for t in child.readers:
            t.start()

    def _read_account(self, child: "_Child") -> None:
        for line in child.proc.stdout:
            try:
                report = json.loads(line)
            except ValueError:
                report = None
            if not isinstance(report, dict):  # not the child's account (a library writing to the descriptor)
                continue
            child.polled = True
            child.held.update(report.get("received", ()))
            child.held.difference_update(report.get("settled", ()))
            with self.stats.lock:
                for k in ("invocations", "messages", "succeeded", "failed"):
                    setattr(self.stats, k, getattr(self.stats, k) + report.get(k, 0))
                self.stats.results.extend(report.get("results", ()))
                self.stats.errors.extend(report.get("errors", ()))
                self.given_up.extend(report.get("given_up", ()))
                self.delivered.update(report.get("deliveries", ()))
                self.cpu_s += report.get("cpu_s", 0.0)
            if report.get("fatal"):
                self.error = RuntimeError(f"the {self.spec.kind} function's pollers stopped: {report['fatal']}")
        code = child.proc.wait()
        if not code or self.error is not None or self._killing:
            return
        child.readers[1].join(timeout=5)  # its last words, for the message
        last = child.last_line.strip()
        if not self._stopping and (not child.polled or self.crashes >= MAX_CRASHES):  # cannot start, or keeps dying
            again = f" (replaced {self.crashes} times)" if self.crashes else ""
            self.error = RuntimeError(f"the {self.spec.kind} function's process exited with {code}{again}"
                                      + (f": {last}" if last else ""))
            return
        self._replace(child, code, last)

    def _replace(self, child: "_Child", code: int, last: str) -> None:
        """A process died during an invocation: fail what it held, as Lambda fails a crashed
        invocation's batch, and start another in its place (unless stopping)."""
        held = sorted(child.held)
        self.crashes += 1
        with self.stats.lock:
            self.stats.invocations += 1
            self.stats.messages += len(held)
            if self.spec.kind != INGEST:  # for S3's async invoke, failed means given up: these are retried
                self.stats.failed += len(held)
            self.stats.errors.append(f"the process died (exit {code})" + (f": {last[:500]}" if last else ""))
        returned = self._return(held)
        self._log("ERROR", f"the {self.spec.kind} function's process died (exit {code}) with {len(held)} message(s) "
                  f"in flight: {returned} made visible again, retried as a crashed Lambda invocation's batch is"
                  + ("" if self._stopping else "; a new process takes its place"),
                  pid=child.proc.pid, exit_code=code, last_line=last[:2000])
        self._spawn(child.share)

    def _return(self, handles: list[str]) -> int:
        """Make the messages behind ``handles`` visible again now; how many it could."""
        if self._sqs is None:
            return 0
        returned = 0
        for i in range(0, len(handles), 10):
            entries = [{"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0} for n, h in enumerate(handles[i:i + 10])]
            try:
                resp = self._sqs.change_message_visibility_batch(QueueUrl=self.spec.queue_url, Entries=entries)
                returned += len(resp.get("Successful", []))
            except Exception:  # noqa: BLE001 - they come back after their visibility timeout anyway
                pass
        return returned

    def _log(self, level: str, message: str, **fields: Any) -> None:
        self._write(json.dumps({"level": level, "logger": "elt_sdk.local.function", "function": self.spec.kind,
                                "message": message, **fields}) + "\n")

    def _write(self, line: str) -> None:
        """One JSON line into the runtime's log stream (stderr without one)."""
        try:
            with self._log_lock:
                (self._log_stream or sys.stderr).write(line)
        except (OSError, ValueError):  # the stream closed under us: the line is dropped, not the child
            pass

    def _copy_logs(self, child: "_Child") -> None:
        """The child's JSON logs into the runtime's log stream (stderr without one); anything else
        it writes there (a warning, a traceback) as a JSON line of its own. Reads to the end
        whatever happens, so the child never blocks on a full pipe."""
        for line in child.proc.stderr:
            if not line.strip():
                continue
            child.last_line = line
            if line.startswith("{"):
                self._write(line)
            else:
                self._log("WARNING", line.rstrip("\n"), pid=child.proc.pid)

    def request_stop(self) -> None:
        """Ask the processes to stop after the invocations in progress (see ``join``)."""
        with self._lock:
            self._stopping = True
            procs = [c.proc for c in self._children]
        for proc in procs:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def join(self, timeout_s: float) -> bool:
        """True once every process has exited and everything it reported was read."""
        while True:
            with self._lock:
                children = list(self._children)
            for child in children:
                try:
                    child.proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    return False
            for child in children:
                for t in child.readers:
                    t.join(timeout=5)
            with self._lock:  # a replacement started meanwhile (before the stop): wait for it too
                if len(self._children) == len(children):
                    return not any(t.is_alive() for c in children for t in c.readers)

    def kill(self) -> None:
        """End the processes now (what they did since their last report is not counted)."""
        with self._lock:
            self._stopping = self._killing = True  # no replacement, and no account of these deaths
            procs = [c.proc for c in self._children]
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@dataclass(eq=False)
class _Child:
    """One process of a function, as its two reader threads see it."""
    proc: subprocess.Popen
    share: int
    """Its pollers (a replacement gets as many)."""
    held: set[str] = field(default_factory=set)
    """Receipt handles of the messages it received and has not settled."""
    polled: bool = False
    last_line: str = ""
    readers: list[threading.Thread] = field(default_factory=list)


def _poller(spec: FunctionSpec) -> Any:
    from elt_sdk.aws import handlers
    from elt_sdk.local.esm import AsyncInvoker, EventSourceMapping

    sqs = handlers._client("sqs")  # noqa: SLF001 - the client the handlers use, on the same endpoint
    if spec.kind == INGEST:
        return AsyncInvoker(sqs, spec.queue_url, handlers.ingest_handler, function_name=spec.function_name,
                            timeout_s=spec.timeout_s, wait_s=spec.wait_s)
    handler = handlers.transform_handler if spec.kind == TRANSFORM else handlers.commit_handler
    return EventSourceMapping(sqs, spec.queue_url, handler, function_name=spec.function_name, timeout_s=spec.timeout_s,
                              batch_size=spec.batch_size, region=spec.region, wait_s=spec.wait_s)


class _Account:
    """The child's side: what changed in its poller's stats since the last report, as one line."""

    def __init__(self, poller: Any, out: IO[str]):
        self.poller, self.out = poller, out
        self.sent = {"results": 0, "errors": 0, "given_up": 0, "deliveries": 0, "invocations": 0, "messages": 0,
                     "succeeded": 0, "failed": 0}
        self.lock = threading.Lock()

    def received(self, handles: list[str]) -> None:
        """Before the handler runs: the parent makes these visible again if this process dies."""
        with self.lock:
            self.out.write(json.dumps({"received": handles}) + "\n")
            self.out.flush()

    def report(self, **extra: Any) -> None:
        s = self.poller.stats
        with self.lock, s.lock:
            line: dict[str, Any] = {}
            for k in ("invocations", "messages", "succeeded", "failed"):
                if getattr(s, k) != self.sent[k]:
                    line[k], self.sent[k] = getattr(s, k) - self.sent[k], getattr(s, k)
            if s.settled:  # only the parent needs them: sent once, then dropped
                line["settled"], s.settled[:] = list(s.settled), []
            for k, items in (("results", s.results), ("errors", s.errors),
                             ("given_up", getattr(self.poller, "given_up", [])),
                             ("deliveries", getattr(self.poller, "deliveries", []))):
                n = len(items)  # the invocation threads append as this reads
                if n > self.sent[k]:
                    line[k], self.sent[k] = items[self.sent[k]:n], n
            line.update(extra)
            if line:
                self.out.write(json.dumps(line) + "\n")
                self.out.flush()


def main(argv: list[str] | None = None) -> int:
    """The child: poll until stdin closes (the parent asked, or died), reporting on stdout."""
    from elt_sdk import logs

    spec = FunctionSpec(**json.loads((argv or sys.argv[1:])[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # in a session of its own, but a kill -INT is the parent's to act on
    logs.configure(sys.stderr, level=os.environ.get("ELT_LOG_LEVEL", "INFO").upper())
    account_out = sys.stdout
    sys.stdout = sys.stderr  # a handler's print() must not break the account
    try:
        poller = _poller(spec)
    except Exception as exc:  # noqa: BLE001 - e.g. its queue does not exist: the parent says so
        account_out.write(json.dumps({"fatal": f"{type(exc).__name__}: {exc}"}) + "\n")
        return 1
    account = _Account(poller, account_out)
    poller.on_receive = account.received
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    def loop() -> None:
        try:
            while not stop.is_set():
                if poller.poll_once():
                    account.report()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which surfaces it
            stop.set()
            account.report(fatal=f"{type(exc).__name__}: {exc}")

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    threads = [threading.Thread(target=loop, name=f"elt-{spec.kind}-{i}") for i in range(max(spec.pollers, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if hasattr(poller, "close"):
        poller.close()
    account.report(cpu_s=time.process_time())
    return 0


if __name__ == "__main__":
    sys.exit(main())
