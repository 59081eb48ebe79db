"""How fast the Iceberg committer commits, and what concurrent committers cost (README figures).

    .venv/bin/python tools/iceberg_commits.py [--objects 200] [--endpoint]

Objects of 50 shipments rows each (one day file each) are transformed into a local folder (or, with
``--endpoint``, the embedded endpoint's S3 with a sqlite catalog) and handed off; then committed
(1) one object per commit, sequentially; (2) in batches of 10 and 100; (3) by 4 committers at once,
each committing its own objects one per commit, counting the conflicts they met. Rows are checked
after each phase (every object exactly once).
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--endpoint", action="store_true", help="S3 on the embedded endpoint instead of a folder")
    args = parser.parse_args()

    from elt_sdk.commit import IcebergHandoff
    from elt_sdk.iceberg.catalog import Warehouse, local_warehouse, open_catalog
    from elt_sdk.iceberg.committer import COMMITTED, CommitMessage, IcebergCommitter
    from elt_sdk.pipeline import Transformer
    from elt_sdk.plugins import load_registry
    from elt_sdk.source import LocalSource
    from elt_sdk.store import LocalStore

    conflicts = {"n": 0}

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "concurrent update" in record.getMessage():
                conflicts["n"] += 1

    logging.getLogger("pyiceberg").addHandler(Count())
    tmp = Path(tempfile.mkdtemp(prefix="iceberg-commits-"))
    endpoint = None
    if args.endpoint:
        from elt_sdk.aws.s3 import S3Store
        from elt_sdk.local.endpoint import EmbeddedEndpoint

        endpoint = EmbeddedEndpoint("us-east-2").start()
        endpoint.client("s3").create_bucket(Bucket="silver", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
        store = S3Store(endpoint.client("s3"), "silver")

        def warehouse() -> Warehouse:
            import boto3

            creds = boto3.Session(**{k.lower(): v for k, v in endpoint.env.items() if k.startswith("AWS_") and "KEY" in k}
                                  ).get_credentials()
            return Warehouse(open_catalog(f"sqlite:///{tmp}/catalog.db", root="s3://silver", region="us-east-2",
                                          endpoint_url=endpoint.url, credentials=creds.get_frozen_credentials()),
                             "bench", "s3://silver")
    else:
        store = LocalStore(tmp / "out")

        def warehouse() -> Warehouse:
            return local_warehouse(tmp / "out", "bench")

    registry = load_registry()
    transformer = Transformer(registry)
    figures = {}

    def handoff(n: int, tag: str) -> list[CommitMessage]:
        sent: list[dict] = []
        h = IcebergHandoff(store, send=sent.append)
        for i in range(n):
            path = tmp / "bronze" / f"{tag}-{i}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps({"record_type": "shipments", "event_time": "2025-06-01T01:00:00Z",
                                                "shipment_id": f"{tag}-{i}-{j}", "origin": "Oslo", "destination": "Rome",
                                                "carrier": "DHL", "weight_kg": 1.0}) + "\n" for j in range(50)))
            transformer.transform_object(LocalSource.from_path(path, key=f"bronze/shipments/{tag}-{i}.jsonl"), h)
        return [CommitMessage.parse(m) for m in sent]

    def commit(messages: list[CommitMessage], batch: int) -> float:
        committer = IcebergCommitter(warehouse(), store)
        started = time.perf_counter()
        for i in range(0, len(messages), batch):
            results = committer.commit(messages[i:i + batch])
            assert all(r.status == COMMITTED for r in results), [r.error for r in results]
        return time.perf_counter() - started

    n = args.objects
    for batch in (1, 10, 100):
        messages = handoff(n, f"b{batch}")
        seconds = commit(messages, batch)
        figures[f"batch {batch}"] = f"{n / seconds:.1f} objects/s, {n / batch / seconds:.1f} commits/s"
    messages = handoff(n, "c")
    conflicts["n"] = 0
    started = time.perf_counter()
    threads = [threading.Thread(target=commit, args=(messages[k::4], 1)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    figures["4 committers, 1 object per commit"] = f"{n / seconds:.1f} commits/s, {conflicts['n']} conflicts retried"
    table = warehouse().load("shipments")
    rows = table.scan().to_arrow().num_rows
    assert rows == 4 * n * 50, rows
    figures["snapshots"] = len(table.snapshots())
    figures["manifests in the current snapshot"] = len(table.current_snapshot().manifests(table.io))
    print(json.dumps({"where": "embedded endpoint S3 + sqlite" if endpoint else "local folder + sqlite",
                      "objects per phase": n, **figures}, indent=1))
    if endpoint:
        endpoint.stop()


if __name__ == "__main__":
    main()
