"""Reading one silver partition from S3 into local files (Lambda's /tmp), for compaction and the
quality gate."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def download_partition(s3: Any, bucket: str, prefix: str, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".parquet"):
                local = folder / f"{len(paths):06d}.parquet"
                s3.download_file(bucket, obj["Key"], str(local))
                paths.append(local)
    return paths
