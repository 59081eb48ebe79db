"""Glue catalog: a database and one table per dataset, columns from the plugin's silver schema,
partition projection on ``dt`` so Athena finds new partitions with no crawler. With
``silver_format = iceberg`` only the database: it is the Iceberg catalog, whose tables the
committer creates (``iceberg.py``)."""
from __future__ import annotations

from aws_cdk import aws_glue as glue
from constructs import Construct

from elt_deploy.core import Pipeline, unique_name
from elt_sdk import layout
from elt_sdk.schema import glue_type


class GlueCatalog(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, pipeline: Pipeline):
        super().__init__(scope, construct_id)
        stack = pipeline.stack
        self.database_name = db_name = unique_name(stack, "silver", sep="_")  # e.g. elt_sdk_silver
        self.database = glue.CfnDatabase(self, "Database", catalog_id=stack.account,
                                         database_input=glue.CfnDatabase.DatabaseInputProperty(
                                             name=db_name, description="elt-sdk silver datasets"))
        self.tables = {}
        pipeline.output("glue_database", db_name, "Glue database of the silver tables (Athena)")
        if pipeline.settings.silver_format == "iceberg":
            return  # the committer creates each dataset's Iceberg table at its first commit (iceberg.py)
        for ds in sorted(pipeline.registry.datasets.values(), key=lambda d: d.name):
            location = f"s3://{pipeline.silver.bucket_name}/{layout.SILVER_PREFIX}{ds.name}/"
            table = glue.CfnTable(
                self, f"Table{''.join(w.title() for w in ds.name.split('_'))}",
                catalog_id=stack.account, database_name=db_name,
                table_input=glue.CfnTable.TableInputProperty(
                    name=ds.name, description=ds.description or f"{ds.name} (plugin {ds.plugin} {ds.version})",
                    table_type="EXTERNAL_TABLE",
                    parameters={
                        "classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "SNAPPY",
                        "projection.enabled": "true", "projection.dt.type": "date",
                        "projection.dt.format": "yyyy-MM-dd", "projection.dt.range": "2000-01-01,NOW",
                        "projection.dt.interval": "1", "projection.dt.interval.unit": "DAYS",
                        "storage.location.template": location + "dt=${dt}/",
                        "elt_sdk.plugin": ds.plugin, "elt_sdk.dataset_version": ds.version,
                    },
                    partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="date")],
                    storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                        location=location,
                        columns=[glue.CfnTable.ColumnProperty(name=f.name, type=glue_type(f.type)) for f in ds.arrow_schema],
                        input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                        output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                        serde_info=glue.CfnTable.SerdeInfoProperty(
                            serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"),
                    ),
                ),
            )
            table.add_resource_dependency(self.database)
            self.tables[ds.name] = table
