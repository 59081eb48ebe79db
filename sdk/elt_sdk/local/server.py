"""moto's server as the embedded endpoint serves it: in a thread of this process, or as its own
process (``python -m elt_sdk.local.server --port 0``, which prints the URL it serves on).

Its own process is what the local pipeline uses: moto's request handling is Python, and in the
pipeline's process it would share one interpreter lock with the handlers that call it; apart,
the two use both cores. Either way the app is moto's with five changes that make it behave
like the services it stands for, and cost what they cost:

- conditional writes are atomic (moto checks an S3 ``If-Match``/``If-None-Match`` precondition,
  or a DynamoDB condition, then writes, with no lock between: two concurrent requests could both
  pass; the commit protocol and the idempotency claims rely on S3 and DynamoDB not allowing it);
- a host's service is looked up once (moto lists its own package folder for every request, under
  a lock all requests share);
- connections are kept alive (served by waitress: see ``make_server``);
- a queue's work per request does not grow with its depth (moto computes every attribute of a
  queue, each a scan of all its messages reading the clock per message, on every send, and
  scans the queue twice per delete, and a receive computed every attribute three times over for
  each message it returned: a thousand objects uploaded at once made each S3 notification,
  receive and delete cost scans of the thousand; see ``fast_queues``);
- a plain S3 object GET or PUT, DynamoDB ``PutItem`` or SQS message batch is answered straight
  from moto's backend, with the calls and headers moto's own answer has (``fast_path``: 0.56 ms
  of CPU for a PUT instead of 1.39 ms, 0.34 ms for a GET instead of 1.11 ms); anything less plain
  is moto's.

``POST /_elt/wake`` ends every SQS long poll in progress (each answers with what it has): a
stopping pipeline need not wait out its pollers' last receive.

``GET /_elt/stats`` answers how many requests the endpoint served, by service and operation
(``s3 PUT object``, ``dynamodb PutItem``, ...), how many of each ``fast_path`` answered, and
the CPU seconds its process has used: what a local run asked of AWS, and what the stand-in cost
to answer it.

``GET /_elt/oldest-message-ages?queue=URL...`` answers, from the queues' own memory, how long
the oldest message of each has waited (SQS tells that only through CloudWatch).

``GET /_elt/archive?bucket=B&prefix=P...`` answers every object under the prefixes (the latest
version of each, none deleted) as one uncompressed tar stream: ``local run`` copies its results
out in one request instead of one GET per file (a thousand small objects made a thousand
silver files and a thousand manifests: 5 s of a 33 s run).
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
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs

from elt_sdk.local import fast_path

CONDITIONAL = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH")
DYNAMODB_WRITES = ("DynamoDB_20120810.PutItem", "DynamoDB_20120810.UpdateItem", "DynamoDB_20120810.DeleteItem",
                   "DynamoDB_20120810.TransactWriteItems")
AGES_PATH = "/_elt/oldest-message-ages"
WAKE_PATH = "/_elt/wake"
STATS_PATH = "/_elt/stats"
ARCHIVE_PATH = "/_elt/archive"
FAST_PATHS = {"s3 GET object": fast_path.s3_object, "s3 PUT object": fast_path.s3_object,
              "dynamodb PutItem": fast_path.dynamodb_put_item, "sqs SendMessageBatch": fast_path.sqs_batch,
              "sqs DeleteMessageBatch": fast_path.sqs_batch}
"""Operations ``fast_path`` answers when they are plain (else moto does), by ``operation_of``."""
OWN_PATHS = frozenset({AGES_PATH, WAKE_PATH, STATS_PATH, ARCHIVE_PATH})
"""Answered by this module, never by moto (S3 bucket names cannot start with an underscore)."""


def fast_queues() -> None:
    """moto's SQS with the clock read once per scan, no attribute computed that a send does not
    read, one scan per delete, and each attribute a request asks for computed once. What a
    request answers is unchanged."""
    from moto.sqs import models

    if getattr(models.Queue, "_elt_fast", False):
        return

    def now_ms() -> float:
        return time.time() * 1000.0

    models.Message.visible = property(lambda m: now_ms() > m.visible_at)
    models.Message.delayed = property(lambda m: now_ms() < m.delayed_until)

    def receivable(m: Any, now: float) -> bool:
        return now > m.visible_at and not now < m.delayed_until

    def messages(queue: Any) -> list:
        now = now_ms()
        return [m for m in queue._messages if receivable(m, now)]

    def delayed(queue: Any) -> int:
        now = now_ms()
        return sum(1 for m in queue._messages if now < m.delayed_until)

    def not_visible(queue: Any) -> int:
        now = now_ms()
        return sum(1 for m in queue._messages if not now > m.visible_at)

    models.Queue.messages = property(messages)
    models.Queue.approximate_number_of_messages = property(lambda q: len(messages(q)))
    models.Queue.approximate_number_of_messages_delayed = property(delayed)
    models.Queue.approximate_number_of_messages_not_visible = property(not_visible)

    sending = threading.local()
    attributes = models.Queue.attributes

    def queue_attributes(queue: Any) -> dict[str, Any]:
        if getattr(sending, "active", False) and not queue.fifo_queue:  # a send reads FIFO attributes only
            return {}
        return attributes.fget(queue)

    models.Queue.attributes = property(queue_attributes)
    send = models.SQSBackend.send_message

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        sending.active = True
        try:
            return send(self, *args, **kwargs)
        finally:
            sending.active = False

    models.SQSBackend.send_message = send_message

    def delete_message(queue: Any, receipt_handle: str) -> None:
        if receipt_handle in queue.deleted_messages:
            return  # deleted already: SQS accepts it again
        with queue._messages_lock:  # a send appends under it: none is lost to the rebuilt list
            current = queue._messages
            for i, message in enumerate(current):
                if message.had_receipt_handle(receipt_handle):
                    queue.pending_messages.discard(message)
                    queue.deleted_messages.update(message.all_receipt_handles)
                    queue._messages = current[:i] + current[i + 1:]
                    return
        raise models.ReceiptHandleIsInvalid()

    models.Queue.delete_message = delete_message

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        # moto reads the period through get_queue_attributes: every attribute of the queue (each
        # a scan of its messages) three times over, for each message a receive returns
        period = self.get_queue(queue_name).message_retention_period
        return int(period) + message.sent_timestamp / 1000 > time.time()

    models.SQSBackend.is_message_valid_based_on_retention_period = retained
    get_attributes = models.SQSBackend.get_queue_attributes

    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        # moto computes every attribute three times for each name asked for: once gives the same
        queue = self.get_queue(queue_name)
        known = {"All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES}
        if not attribute_names or any(name not in known for name in attribute_names) or "All" in attribute_names:
            return get_attributes(self, queue_name, attribute_names)  # moto's answer, or its error
        attributes = queue.attributes
        return {name: attributes[name] for name in attribute_names if attributes.get(name) is not None}

    models.SQSBackend.get_queue_attributes = get_queue_attributes

    def any_visible(queue: Any) -> bool:
        now = now_ms()
        return any(receivable(m, now) for m in queue._messages)

    receive = models.SQSBackend.receive_message

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any,
                        **kwargs: Any) -> Any:
        """moto's long poll, which ``wake_long_polls`` can end: moto's own waits out its time."""
        if not wait_seconds_timeout:
            return receive(self, queue_name, count, 0, *args, **kwargs)
        woken = _wakes[0]
        deadline = time.monotonic() + int(wait_seconds_timeout)
        queue = self.get_queue(queue_name)
        while True:
            result = receive(self, queue_name, count, 0, *args, **kwargs)
            left = deadline - time.monotonic()
            if result or left <= 0 or _wakes[0] != woken:
                return result
            with queue._messages_lock:  # a send notifies under it; a delay or visibility running out
                # does not, so look again each second (as moto does)
                queue._messages_lock.wait_for(lambda: any_visible(queue) or _wakes[0] != woken,
                                               timeout=min(left, 1.0))

    models.SQSBackend.receive_message = receive_message
    models.Queue._elt_fast = True


_wakes = [0]
"""How many times long polls were woken: a poll ends when it changes."""


def wake_long_polls() -> None:
    """End every long poll in progress in this process's moto: each answers with what it has."""
    from moto.sqs.models import sqs_backends

    _wakes[0] += 1
    for account in list(sqs_backends.values()):
        for backend in list(account.values()):
            for queue in list(backend.queues.values()):
                with queue._messages_lock:
                    queue._messages_lock.notify_all()


def make_app() -> Callable:
    """moto's WSGI app with the changes above."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    fast_queues()

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
    served: dict[str, int] = {}
    fast_answers: dict[str, int] = {}  # of which answered by fast_path
    counting = threading.Lock()

    def serve(environ, start_response):  # noqa: ANN001, ANN202 - WSGI
        if environ.get("PATH_INFO") in OWN_PATHS:
            return own_route(environ, start_response)
        operation = operation_of(environ)
        with counting:
            served[operation] = served.get(operation, 0) + 1
        if any(h in environ for h in CONDITIONAL) or environ.get("HTTP_X_AMZ_TARGET") in DYNAMODB_WRITES:
            with lock:
                return list(answer(operation, environ, start_response))
        return answer(operation, environ, start_response)

    def answer(operation: str, environ, start_response):  # noqa: ANN001, ANN202 - WSGI
        fast = FAST_PATHS.get(operation)
        if fast is not None:
            response = fast(environ, start_response)
            if response is not None:
                with counting:
                    fast_answers[operation] = fast_answers.get(operation, 0) + 1
                return response
        return app(environ, start_response)

    def own_route(environ, start_response):  # noqa: ANN001, ANN202 - WSGI
        if environ.get("PATH_INFO") == STATS_PATH:
            with counting:
                requests, answered_fast = dict(sorted(served.items())), dict(sorted(fast_answers.items()))
            return _json(start_response, "200 OK", {"requests": requests, "fast_path": answered_fast,
                                                    "cpu_s": round(time.process_time(), 3)})
        if environ.get("PATH_INFO") == AGES_PATH:
            queues = parse_qs(environ.get("QUERY_STRING", "")).get("queue", [])
            return _json(start_response, "200 OK",
                         oldest_message_ages(environ.get("HTTP_X_ELT_REGION", "us-east-2"), queues))
        if environ.get("PATH_INFO") == WAKE_PATH and environ.get("REQUEST_METHOD") == "POST":
            wake_long_polls()
            start_response("204 No Content", [])
            return []
        if environ.get("PATH_INFO") == ARCHIVE_PATH:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            try:
                members = list(archive_members(query.get("bucket", [""])[0], query.get("prefix", [])))
            except LookupError as exc:  # no such bucket, or moto's internals moved: the caller reads by GETs
                return _json(start_response, "404 Not Found", {"error": str(exc)})
            start_response("200 OK", [("Content-Type", "application/x-tar")])
            return tar_stream(members)
        return _json(start_response, "405 Method Not Allowed", {"error": "POST only"})

    return serve


def _json(start_response: Callable, status: str, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def operation_of(environ: dict[str, Any]) -> str:
    """``service Operation`` for the JSON protocols (DynamoDB, SQS: the target header names it);
    for S3, the method and what it is on: ``s3 GET object``, ``s3 GET bucket?list-type``."""
    scope = fast_path.credential_scope(environ)
    service = scope[3] if scope else "unsigned"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service} {target.rsplit('.', 1)[-1]}"
    path = environ.get("PATH_INFO", "/").strip("/")
    query = environ.get("QUERY_STRING", "")
    what = "object" if "/" in path else "bucket" if path else "service"
    first = query.split("&", 1)[0].split("=", 1)[0]
    return f"{service} {environ.get('REQUEST_METHOD', '?')} {what}" + (f"?{first}" if first else "")


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


def archive_members(bucket: str, prefixes: list[str]) -> Iterator[tuple[str, Any]]:
    """(key, moto's key object) of every object under ``prefixes``, in key order; LookupError if
    the bucket does not exist or moto no longer keeps its objects where this looks."""
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import FakeDeleteMarker, s3_backends

        objects = dict(s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket].keys.items())
    except (ImportError, KeyError, AttributeError) as exc:
        raise LookupError(f"no bucket {bucket!r} to archive ({type(exc).__name__}: {exc})") from None
    for key in sorted(objects):
        if any(key.startswith(p) for p in prefixes) and not isinstance(objects[key], FakeDeleteMarker):
            yield key, objects[key]


def tar_stream(members: Iterable[tuple[str, Any]]) -> Iterator[bytes]:
    """A POSIX tar of ``members``, one member at a time (memory holds one object)."""
    import tarfile

    for key, obj in members:
        data = obj.value
        info = tarfile.TarInfo(key)
        info.size, info.mtime, info.mode = len(data), int(obj.last_modified.timestamp()), 0o644
        yield info.tobuf(tarfile.PAX_FORMAT)
        yield data
        if len(data) % tarfile.BLOCKSIZE:
            yield tarfile.NUL * (tarfile.BLOCKSIZE - len(data) % tarfile.BLOCKSIZE)
    yield tarfile.NUL * (2 * tarfile.BLOCKSIZE)


SERVER_THREADS = 64
"""Requests served at once. Long polls hold a thread for their wait (up to 20 s each): the local
runtime's pollers, ``status --watch`` and a test's clients stay far below this."""


def make_server(port: int):  # noqa: ANN201 - a waitress server
    """``make_app()`` served by waitress on 127.0.0.1:``port`` (0: any free port).

    Waitress, not moto's werkzeug server: werkzeug's development server closes the connection
    after every response (and lingers on each to drain it), so every call paid a new connection
    and a new thread; waitress keeps HTTP/1.1 connections alive and serves them from a pool of
    threads. It is pure Python with no dependencies (the ``local`` extra)."""
    from waitress.channel import HTTPChannel
    from waitress.server import create_server

    class Channel(HTTPChannel):
        def send_continue(self) -> None:
            # waitress 3.0 answers "Expect: 100-continue" on a request with no body (boto3's
            # PutObject of b"") and then marks the request incomplete: it waits for a body that
            # never comes. Nothing to continue: the request is served as it is.
            if self.request is not None and self.request.completed:
                self.request.expect_continue = False
                return
            super().send_continue()

    logging.getLogger("waitress").setLevel(logging.ERROR)
    try:
        server = create_server(make_app(), host="127.0.0.1", port=port, threads=SERVER_THREADS,
                               connection_limit=4096, channel_timeout=300, ident="elt-sdk-endpoint",
                               clear_untrusted_proxy_headers=False)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise OSError(errno.EADDRINUSE, f"cannot serve on 127.0.0.1:{port}: address already in use") from None
        raise
    server.channel_class = Channel
    return server


def _stop(server) -> None:  # noqa: ANN001 - a waitress server
    """End a waitress server's loop: close every channel (the listener too), then its threads."""
    server.logger.setLevel(logging.CRITICAL)
    while server._map:
        for channel in list(server._map.values()):
            channel.handle_close()
    server.task_dispatcher.shutdown(timeout=2)


class ThreadServer:
    """The server in a thread of this process."""

    def __init__(self, port: int = 0):
        self.server = make_server(port)
        self.thread = threading.Thread(target=self._run, daemon=True, name="elt-endpoint")
        self.thread.start()

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):  # the loop's sockets closed under it by stop()
            pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.effective_port}"

    def stop(self) -> None:
        wake_long_polls()  # a poll in progress would hold a task thread for up to its wait
        _stop(self.server)
        self.thread.join(timeout=10)


class ProcessServer:
    """The server as its own process; ``stop`` ends it."""

    def __init__(self, port: int = 0, timeout_s: float = 60.0):
        import subprocess

        # a session of its own: Ctrl-C reaches the pipeline, which stops its functions before this
        self.proc = subprocess.Popen([sys.executable, "-m", "elt_sdk.local.server", "--port", str(port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
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

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # state lives in memory only: nothing to flush
    try:
        server = make_server(args.port)
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 2
    parent = os.getppid()

    def watch_parent() -> None:  # the pipeline's process died (even by SIGKILL): no server left behind
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    print(f"http://127.0.0.1:{server.effective_port}", flush=True)
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
