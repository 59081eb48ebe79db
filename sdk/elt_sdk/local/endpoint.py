"""An embedded AWS endpoint: moto's threaded server on 127.0.0.1, a free port, started and
stopped by us. boto3 reaches it through ``AWS_ENDPOINT_URL`` (real HTTP, real requests)."""
from __future__ import annotations

import logging
import os
from typing import Any

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def _server_class() -> type:
    """moto's threaded server, with conditional writes made atomic.

    moto checks an S3 ``If-Match``/``If-None-Match`` precondition and then writes, and a DynamoDB
    condition expression likewise, without a lock between the two: two concurrent requests can
    both pass. S3 and DynamoDB make each atomic, and the commit protocol and the idempotency
    claims rely on that, so this endpoint runs those requests one at a time.
    """
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

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            self._server = make_server(self._ip_address, self._port, atomic(DomainDispatcherApplication(create_backend_app)),
                                       True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server


class EmbeddedEndpoint:
    """``with EmbeddedEndpoint(region) as ep:`` sets the process's AWS environment to the local
    server for the duration, and restores it afterwards."""

    def __init__(self, region: str = "us-east-2"):
        self.region = region
        self.url = ""
        self._server: Any = None
        self._saved: dict[str, str | None] = {}

    @property
    def env(self) -> dict[str, str]:
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region}

    def start(self) -> "EmbeddedEndpoint":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = _server_class()(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
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
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved.clear()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=self.region)

    def __enter__(self) -> "EmbeddedEndpoint":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
