"""An embedded AWS endpoint: moto's server on 127.0.0.1, a free port, started and stopped by us
(in a thread, or as its own process: ``local/server.py``). boto3 reaches it through
``AWS_ENDPOINT_URL`` (real HTTP, real requests)."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from elt_sdk.aws.context import DUMMY_CREDENTIALS


class EmbeddedEndpoint:
    """``with EmbeddedEndpoint(region) as ep:`` sets the process's AWS environment to the local
    server for the duration, and restores it afterwards."""

    def __init__(self, region: str = "us-east-2", port: int = 0, *, own_process: bool = False):
        self.region = region
        self.port = port  # 0: any free port
        self.own_process = own_process  # the local pipeline's choice: the server off this interpreter's lock
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
        from elt_sdk.local.server import ProcessServer, ThreadServer

        self._server = ProcessServer(self.port) if self.own_process else ThreadServer(self.port)
        self.url = self._server.url
        for k, v in self.env.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v
        for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            self._saved[k] = os.environ.pop(k, None)
        return self

    def _own_route(self, path: str, query: list[tuple[str, str]] = (), *, method: str = "GET",
                   timeout_s: float = 5) -> Any:
        """An open response from one of the server's own routes (``local/server.py``); OSError if
        the server cannot answer (a URL not started yet included)."""
        from urllib.parse import urlencode
        from urllib.request import Request, urlopen

        if not self.url:
            raise OSError("the endpoint is not started")
        request = Request(f"{self.url}{path}" + (f"?{urlencode(query)}" if query else ""), method=method,
                          headers={"X-Elt-Region": self.region})
        return urlopen(request, timeout=timeout_s)  # noqa: S310 - our own loopback server

    def oldest_message_ages(self, queue_urls: list[str]) -> dict[str, float | None]:
        """How long the oldest message of each queue has waited, from the server's memory."""
        from elt_sdk.local.server import AGES_PATH

        try:
            with self._own_route(AGES_PATH, [("queue", u) for u in queue_urls]) as resp:
                return json.loads(resp.read())
        except OSError:
            return {url: None for url in queue_urls}

    def stats(self) -> dict[str, Any]:
        """``{"requests": {"s3 PUT object": n, ...}, "fast_path": {...}, "cpu_s": x}``: the
        requests the endpoint served by operation, those of them its fast path answered, and its
        process's CPU seconds (the host's, for a server in this process); empty if the server
        cannot answer."""
        from elt_sdk.local.server import STATS_PATH

        try:
            with self._own_route(STATS_PATH) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return {}

    def wake(self) -> None:
        """End the SQS long polls in progress now, each with what it has (a stopping pipeline's
        pollers need not wait out their last receive). Best effort: a server that cannot answer
        lets them end on their own."""
        from elt_sdk.local.server import WAKE_PATH

        try:
            with self._own_route(WAKE_PATH, method="POST"):
                pass
        except OSError:
            pass

    def download(self, bucket: str, prefixes: list[str], dest: Path) -> int:
        """Copy every object of ``bucket`` under ``prefixes`` to ``dest``/key, in one request (the
        server's tar stream: ``local/server.py``); the number of files written. OSError if the
        server could not answer, or not to the end (the caller copies by S3 GETs instead); a key
        that would land outside ``dest`` is refused (tarfile's ``data`` filter), never written."""
        import http.client
        import tarfile

        from elt_sdk.local.server import ARCHIVE_PATH

        if not hasattr(tarfile, "data_filter"):  # Python 3.11 before 3.11.4: no safe extraction
            raise OSError("this Python's tarfile has no 'data' filter")
        written = 0
        try:
            with self._own_route(ARCHIVE_PATH, [("bucket", bucket)] + [("prefix", p) for p in prefixes],
                                 timeout_s=300) as resp, tarfile.open(fileobj=resp, mode="r|") as tar:
                for member in tar:
                    tar.extract(member, dest, filter="data")
                    written += member.isfile()
        except (tarfile.ReadError, http.client.HTTPException) as exc:  # the stream broke off
            raise OSError(f"the archive of {bucket} ended early: {exc}") from exc
        return written

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
