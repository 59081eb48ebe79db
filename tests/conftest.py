"""Shared fixtures: the installed plugins' registry, and fake plugin distributions on sys.path."""
from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from elt_sdk.plugins import Registry, load_registry  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


@pytest.fixture
def fake_dist(tmp_path, monkeypatch):
    """Install a throwaway plugin distribution (a module + dist-info with an ``elt_sdk`` entry
    point) on sys.path, so discovery goes through the real importlib.metadata machinery."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))

    def make(name: str, source: str) -> None:
        (root / f"{name}.py").write_text(textwrap.dedent(source))
        info = root / f"{name}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(f"[elt_sdk]\n{name} = {name}\n")
        sys.modules.pop(name, None)

    yield make, root
    for mod in list(sys.modules):
        if mod.startswith("fake_"):
            sys.modules.pop(mod, None)


@pytest.fixture(scope="module")
def endpoint():
    """moto's server on loopback, one per test module (tests share it through unique names)."""
    from elt_sdk.local.endpoint import EmbeddedEndpoint

    with EmbeddedEndpoint("us-east-2") as ep:
        yield ep


@pytest.fixture
def stack(endpoint, monkeypatch):
    """Fresh resources (unique names) on the endpoint and the handlers' environment for one test."""
    import uuid

    from elt_sdk.aws import handlers
    from elt_sdk.local.provision import provision
    from elt_sdk.settings import Settings

    settings = Settings(name_prefix=f"t{uuid.uuid4().hex[:8]}", region="us-east-2")
    res = provision(settings, endpoint.client)
    for k, v in res.handler_environment(settings).items():
        monkeypatch.setenv(k, v)
    handlers.reset()
    yield settings, res
    handlers.reset()


class ThrottlesFirstSilverDelete:
    """Mixed into a ``Store``: its first ``delete`` of files under silver/ fails, as a throttled
    DeleteObjects does (a commit's step 5)."""

    throttled = False

    def delete(self, keys):
        if not self.throttled and any(k.startswith("silver/") for k in keys):
            self.throttled = True
            raise RuntimeError("SlowDown")
        return super().delete(keys)


def notifications(endpoint, res) -> list[dict]:
    """The S3 event notifications the stack's bronze bucket sent so far (moto's, with their
    sequencers and event times), taken off its events queue."""
    sqs = endpoint.client("sqs")
    events = []
    while True:
        msgs = sqs.receive_message(QueueUrl=res.events_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return events
        for m in msgs:
            body = json.loads(m["Body"])
            if "Records" in body:
                events.append(body)
            sqs.delete_message(QueueUrl=res.events_queue_url, ReceiptHandle=m["ReceiptHandle"])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


pytest_plugins = ["pytester", "synth_fixtures"]
