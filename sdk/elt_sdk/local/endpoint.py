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
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
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
