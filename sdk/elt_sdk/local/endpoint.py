"""An embedded AWS endpoint: moto's threaded server on 127.0.0.1, a free port, started and
stopped by us. boto3 reaches it through ``AWS_ENDPOINT_URL`` (real HTTP, real requests)."""
from __future__ import annotations

import logging
import os
import threading
from typing import Any

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def _server_class() -> type:
    """moto's threaded server, with conditional writes made atomic, kept-alive connections and
    the service of a request looked up once per host.

    moto checks an S3 ``If-Match``/``If-None-Match`` precondition and then writes, and a DynamoDB
    condition expression likewise, without a lock between the two: two concurrent requests can
    both pass. S3 and DynamoDB make each atomic, and the commit protocol and the idempotency
    claims rely on that, so this endpoint runs those requests one at a time. moto's dispatcher
    lists its own package folder for every request (under a lock all requests share) and its
    request handler closes the connection after each response (HTTP/1.0): both cost more than
    most requests themselves.
    """
    import errno
    import threading

    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    lock = threading.Lock()
    conditional = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH")
    dynamodb_writes = ("DynamoDB_20120810.PutItem", "DynamoDB_20120810.UpdateItem", "DynamoDB_20120810.DeleteItem",
                       "DynamoDB_20120810.TransactWriteItems")

    def atomic(app):  # noqa: ANN001, ANN202 - a WSGI middleware
        def serve(environ, start_response):  # noqa: ANN001, ANN202
            if any(h in environ for h in conditional) or environ.get("HTTP_X_AMZ_TARGET") in dynamodb_writes:
                with lock:
                    return list(app(environ, start_response))
            return app(environ, start_response)
        return serve

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, **kwargs)
            self._backends: dict[str | None, object] = {}

        def get_backend_for_host(self, host):  # noqa: ANN001, ANN202 - moto's signature
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    class KeepAlive(MotoRequestHandler):
        protocol_version = "HTTP/1.1"

    class Server(ThreadedMotoServer):
        error: OSError | None = None

        def _server_entry(self) -> None:
            try:
                self._server = make_server(self._ip_address, self._port, atomic(Dispatcher(create_backend_app)),
                                           True, request_handler=KeepAlive)
            except (OSError, SystemExit) as exc:  # a port in use (werkzeug exits): say so, never wait forever
                self.error = exc if isinstance(exc, OSError) else OSError(errno.EADDRINUSE, "address already in use")
                self._server_ready_event.set()
                return
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server


class EmbeddedEndpoint:
    """``with EmbeddedEndpoint(region) as ep:`` sets the process's AWS environment to the local
    server for the duration, and restores it afterwards."""

    def __init__(self, region: str = "us-east-2", port: int = 0):
        self.region = region
        self.port = port  # 0: any free port
        self.url = ""
        self._server: Any = None
        self._saved: dict[str, str | None] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    @property
    def env(self) -> dict[str, str]:
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region}

    def start(self) -> "EmbeddedEndpoint":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        if self.port:  # a fixed port: check it is free first (werkzeug would print and exit)
            import socket

            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", self.port))
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot serve on 127.0.0.1:{self.port}: {exc.strerror}") from None
        self._server = _server_class()(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        if self._server.error is not None:
            error, self._server = self._server.error, None
            raise OSError(error.errno, f"cannot serve on 127.0.0.1:{self.port}: {error.strerror}")
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        for k, v in self.env.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v
        for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            self._saved[k] = os.environ.pop(k, None)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._clients.clear()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved.clear()

    def client(self, service: str) -> Any:
        """One client per service, made once: creating a boto3 client costs more than most
        calls to this endpoint (clients are safe to share between threads)."""
        with self._clients_lock:
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                self._clients[service] = boto3.client(service, endpoint_url=self.url, region_name=self.region,
                                                      config=Config(max_pool_connections=32))
            return self._clients[service]

    def __enter__(self) -> "EmbeddedEndpoint":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
