"""Query at scale: Glue tables over the Parquet traces and events tables the Record step
writes (prtrace.dataset.trace_table, prtrace.dataset.event_table), so Athena can query all
traces, and an Athena workgroup whose results are encrypted and kept under their own prefix
of the data bucket.

Partition projection, no crawler and no partition maintenance: the tenant is an injected
partition key (every query must name its tenant: `WHERE tenant = 'acme'`, so a query reads
one tenant's prefix only), the date a projected daily range. Locally, `prtrace query "SQL"`
runs DuckDB over the same files, with the same columns.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra_cdk.config import StackConfig
from prtrace.dataset import event_table, trace_table
from prtrace.dataset.parquet_lite import Column
from prtrace.dataset.trace_table import GLUE_TYPES

TABLE_NAME: Final = "traces"
EVENTS_TABLE_NAME: Final = "events"
RESULTS_PREFIX: Final = "athena-results/"
FIRST_DATE: Final = "2026-01-01"


def database_name(config: StackConfig) -> str:
    return f"{config.prefix}_traces".replace("-", "_")  # Glue/Athena names: no hyphens


class QueryConstruct(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        self.database_name = database_name(config)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description="prtrace: ended traces and their events"
            ),
        )
        self.table = self._table(
            "Traces",
            bucket,
            TABLE_NAME,
            trace_table.table_prefix("${tenant}"),
            trace_table.COLUMNS,
            "One row per ended trace (prtrace.dataset.trace_table)",
        )
        self.events_table = self._table(
            "Events",
            bucket,
            EVENTS_TABLE_NAME,
            event_table.table_prefix("${tenant}"),
            event_table.COLUMNS,
            "One row per event of a complete trace (prtrace.dataset.event_table)",
        )
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=f"{config.prefix}-traces",
            description="prtrace traces queries; results encrypted in the data bucket",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{bucket.bucket_name}/{RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )

    def _table(
        self,
        construct_id: str,
        bucket: s3.IBucket,
        name: str,
        prefix: str,
        columns: tuple[Column, ...],
        description: str,
    ) -> glue.CfnTable:
        """A Parquet table partitioned by tenant (injected) and date (projected) under
        `prefix`/date=YYYY-MM-DD/."""
        template = f"s3://{bucket.bucket_name}/{prefix}/date=${{date}}/"
        table = glue.CfnTable(
            self,
            construct_id,
            catalog_id=Stack.of(self).account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    "projection.enabled": "true",
                    "projection.tenant.type": "injected",
                    "projection.date.type": "date",
                    "projection.date.format": "yyyy-MM-dd",
                    "projection.date.range": f"{FIRST_DATE},NOW",
                    "projection.date.interval": "1",
                    "projection.date.interval.unit": "DAYS",
                    "storage.location.template": template,
                },
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name="tenant", type="string"),
                    glue.CfnTable.ColumnProperty(name="date", type="string"),
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=f"s3://{bucket.bucket_name}/tenants/",
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format=(
                        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
                    ),
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=(
                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                        )
                    ),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=c.name, type=GLUE_TYPES[c.type])
                        for c in columns
                    ],
                ),
            ),
        )
        table.add_dependency(self.database)
        return table
