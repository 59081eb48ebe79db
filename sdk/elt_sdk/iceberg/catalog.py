"""Where the Iceberg tables are: a catalog (Glue in AWS, sqlite locally), a namespace (the Glue
database) and the silver store's root, under which each table's files live at
``silver/<dataset>/`` (``data/dt=YYYY-MM-DD/`` and ``metadata/``).

Every table is created with the same explicit location, so the transform knows where to stage a
table's files without asking the catalog. The same ``Warehouse`` serves the committer, the
maintenance commands, ``query`` and ``verify``, on S3 (the stack's silver bucket, or the embedded
endpoint's) and on a local folder (``elt-sdk transform --out DIR``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table

from elt_sdk import layout

LOCAL_CATALOG_FILE = layout.LOCAL_ICEBERG_CATALOG
"""A local output folder's catalog, beside its ``silver/``."""
TABLE_PROPERTIES = {
    "format-version": "2",
    # full bounds on the object columns: a file of one object is recognised from its metadata alone
    "write.metadata.metrics.column._elt_source": "full",
    "write.metadata.metrics.column._elt_version": "full",
    "write.parquet.compression-codec": "snappy",
    # keep the metadata folder from growing without end (older metadata files are removed on commit)
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}


@dataclass
class Warehouse:
    """A catalog, its namespace and the root URI of the silver store (``s3://bucket`` or
    ``file:///abs/folder``)."""

    catalog: Catalog
    namespace: str
    root: str

    def uri(self, key: str) -> str:
        """A store key (``silver/...``) as a URI the catalog's FileIO reads."""
        return f"{self.root}/{key}"

    def key(self, uri: str) -> str | None:
        """The store key of a URI under this root, or None."""
        prefix = self.root + "/"
        return uri[len(prefix):] if uri.startswith(prefix) else None

    def location(self, dataset: str) -> str:
        return self.uri(layout.iceberg_table_prefix(dataset).rstrip("/"))

    def identifier(self, dataset: str) -> tuple[str, str]:
        return (self.namespace, dataset)

    def load(self, dataset: str) -> Table | None:
        try:
            return self.catalog.load_table(self.identifier(dataset))
        except NoSuchTableError:
            return None

    def datasets(self) -> list[str]:
        """The tables of the namespace (none before the first commit made it)."""
        if not self.catalog.namespace_exists(self.namespace):
            return []
        return sorted(ident[-1] for ident in self.catalog.list_tables(self.namespace))

    def create(self, dataset: str, schema: Any, spec: Any) -> Table:
        """Create the dataset's table (or load it, when another committer created it first)."""
        for _ in range(3):  # two committers may create it at once (sqlite answers with an IntegrityError)
            try:
                self.catalog.create_namespace(self.namespace)
                break
            except NamespaceAlreadyExistsError:
                break
            except Exception:  # noqa: BLE001 - a concurrent creation; fine once the namespace is there
                if self.catalog.namespace_exists(self.namespace):
                    break
        properties = {**TABLE_PROPERTIES, "schema.name-mapping.default": schema.name_mapping.model_dump_json()}
        try:
            return self.catalog.create_table(self.identifier(dataset), schema=schema, partition_spec=spec,
                                             location=self.location(dataset), properties=properties)
        except TableAlreadyExistsError:
            return self.catalog.load_table(self.identifier(dataset))


def s3_properties(region: str | None = None, endpoint_url: str | None = None,
                  credentials: Any = None) -> dict[str, str]:
    """FileIO properties for S3: the region, an endpoint (moto's), and credentials when given
    (else the default chain: Lambda's role through its environment)."""
    props = {}
    if region:
        props["s3.region"] = region
    if endpoint_url:
        props["s3.endpoint"] = endpoint_url
    if credentials is not None:
        props.update({"s3.access-key-id": credentials.access_key, "s3.secret-access-key": credentials.secret_key})
        if credentials.token:
            props["s3.session-token"] = credentials.token
    return props


def open_catalog(spec: str, *, root: str, region: str | None = None, endpoint_url: str | None = None,
                 credentials: Any = None, glue_client: Any = None) -> Catalog:
    """``spec``: ``glue`` (AWS Glue, the region's default catalog) or an SQLAlchemy URI
    (``sqlite:////abs/catalog.db``)."""
    props = s3_properties(region, endpoint_url, credentials)
    warehouse = f"{root}/{layout.SILVER_PREFIX.rstrip('/')}"
    if spec == "glue":
        from pyiceberg.catalog.glue import GlueCatalog

        if glue_client is None:
            import boto3

            glue_client = boto3.client("glue", region_name=region, endpoint_url=endpoint_url)
        return GlueCatalog("elt", client=glue_client, warehouse=warehouse, **props)
    if spec.startswith(("sqlite:", "postgresql", "mysql")):
        from pyiceberg.catalog.sql import SqlCatalog

        for attempt in range(3):
            try:
                return SqlCatalog("elt", uri=spec, warehouse=warehouse, **props)
            except Exception as exc:  # noqa: BLE001 - pyiceberg checks for its tables, then creates them: two
                # processes opening a new catalog at once (the committer and verify, say) race; the loser
                # finds them made on its next try
                if "already exists" not in str(exc) or attempt == 2:
                    raise
    raise ValueError(f"Iceberg catalog {spec!r}: 'glue' or an SQLAlchemy URI such as sqlite:////path/catalog.db")


def local_warehouse(folder: Path, namespace: str) -> Warehouse:
    """A local output folder's tables (``elt-sdk transform --out DIR``): files under
    ``DIR/silver/<dataset>/``, the sqlite catalog at ``DIR/iceberg.db``."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.as_uri()
    return Warehouse(open_catalog(f"sqlite:///{folder / LOCAL_CATALOG_FILE}", root=root), namespace, root)


def from_environment(env: Mapping[str, str] | None = None) -> Warehouse:
    """The committer's and the maintenance function's warehouse, from the variables the stack
    (or the local runtime) sets: ``ELT_ICEBERG_CATALOG``, ``ELT_ICEBERG_DATABASE``,
    ``ELT_SILVER_BUCKET``, and ``AWS_ENDPOINT_URL`` for an emulator."""
    from elt_sdk import settings as s

    env = os.environ if env is None else env
    root = f"s3://{env[s.ENV_SILVER_BUCKET]}"
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    endpoint = env.get("AWS_ENDPOINT_URL") or None
    credentials = None
    if endpoint:  # an emulator: the dummy credentials of the environment, handed to pyarrow's S3 explicitly
        import boto3

        credentials = boto3.Session().get_credentials()
        credentials = credentials.get_frozen_credentials() if credentials else None
    catalog = open_catalog(env.get(s.ENV_ICEBERG_CATALOG) or "glue", root=root, region=region, endpoint_url=endpoint,
                           credentials=credentials)
    return Warehouse(catalog, env[s.ENV_ICEBERG_DATABASE], root)
