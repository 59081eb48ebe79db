"""moto's server as the embedded endpoint serves it: in a thread of this process, or as its own
process (``python -m elt_sdk.local.server --port 0``, which prints the URL it serves on).

Its own process is what the local pipeline uses: moto's request handling is Python, and in the
pipeline's process it would share one interpreter lock with the handlers that call it; apart,
the two use both cores. Either way the app is moto's with three changes that make it behave
like the services it stands for, and cost what they cost:

- conditional writes are atomic (moto checks an S3 ``If-Match``/``If-None-Match`` precondition,
  or a DynamoDB condition, then writes, with no lock between: two concurrent requests could both
  pass; the commit protocol and the idempotency claims rely on S3 and DynamoDB not allowing it);
- a host's service is looked up once (moto lists its own package folder for every request, under
  a lock all requests share);
- connections are kept alive (moto's handler speaks HTTP/1.0: a new connection per request).

``GET /_elt/oldest-message-ages?queue=URL...`` answers, from the queues' own memory, how long
the oldest message of each has waited (SQS tells that only through CloudWatch).
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import threading
import time
from typing import Any, Callable
from urllib.parse import parse_qs

CONDITIONAL = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH")
DYNAMODB_WRITES = ("DynamoDB_20120810.PutItem", "DynamoDB_20120810.UpdateItem", "DynamoDB_20120810.DeleteItem",
                   "DynamoDB_20120810.TransactWriteItems")
AGES_PATH = "/_elt/oldest-message-ages"


def make_app() -> Callable:
    """moto's WSGI app with the changes above."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._backends: dict[str | None, object] = {}

        def get_backend_for_host(self, host):  # noqa: ANN001, ANN202 - moto's signature
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    app = Dispatcher(create_backend_app)
    lock = threading.Lock()

    def serve(environ, start_response):  # noqa: ANN001, ANN202 - WSGI
        if environ.get("PATH_INFO") == AGES_PATH:
            queues = parse_qs(environ.get("QUERY_STRING", "")).get("queue", [])
            body = json.dumps(oldest_message_ages(environ.get("HTTP_X_ELT_REGION", "us-east-2"), queues)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if any(h in environ for h in CONDITIONAL) or environ.get("HTTP_X_AMZ_TARGET") in DYNAMODB_WRITES:
            with lock:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return serve


def oldest_message_ages(region: str, queue_urls: list[str]) -> dict[str, float | None]:
    """Seconds since the oldest message of each queue was sent, read from moto's memory (this
    process serves it)."""
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sqs.models import sqs_backends

        queues = sqs_backends[DEFAULT_ACCOUNT_ID][region].queues
        now_ms = time.time() * 1000
        out: dict[str, float | None] = {}
        for url in queue_urls:
            q = queues.get(url.rstrip("/").rsplit("/", 1)[-1])
            sent = [m.sent_timestamp for m in list(getattr(q, "_messages", [])) if m.sent_timestamp] if q else []
            out[url] = round((now_ms - min(sent)) / 1000, 3) if sent else 0.0
        return out
    except Exception:  # noqa: BLE001 - moto's internals moved: the age is unknown, nothing else is
        return {url: None for url in queue_urls}


def make_server(port: int):  # noqa: ANN201 - a werkzeug server
    """A threaded werkzeug server of ``make_app()`` on 127.0.0.1:``port`` (0: any free port)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server as werkzeug_server

    class KeepAlive(MotoRequestHandler):
        protocol_version = "HTTP/1.1"

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        return werkzeug_server("127.0.0.1", port, make_app(), threaded=True, request_handler=KeepAlive)
    except SystemExit:  # werkzeug exits on a port in use: say so instead
        raise OSError(errno.EADDRINUSE, f"cannot serve on 127.0.0.1:{port}: address already in use") from None


class ThreadServer:
    """The server in a thread of this process."""

    def __init__(self, port: int = 0):
        self.server = make_server(port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="elt-endpoint")
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()


class ProcessServer:
    """The server as its own process; ``stop`` ends it."""

    def __init__(self, port: int = 0, timeout_s: float = 60.0):
        import subprocess

        self.proc = subprocess.Popen([sys.executable, "-m", "elt_sdk.local.server", "--port", str(port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not line.startswith("http://"):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.proc.kill()
            raise OSError(errno.EADDRINUSE if "address already in use" in err else errno.EIO,
                          (err.strip().splitlines() or [f"the endpoint did not start: {line!r}"])[-1])
        self.url = line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 - it would not stop: end it
                self.proc.kill()
                self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="elt-sdk's embedded AWS endpoint (moto), on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server = make_server(args.port)
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    parent = os.getppid()

    def watch_parent() -> None:  # the pipeline's process died (even by SIGKILL): no server left behind
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    print(f"http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
