"""The Glue tables Athena queries the Parquet traces and events tables through: their
columns are the writers', partitions are projected (the tenant injected, so every query
names one), their locations are where Record writes; the Athena workgroup encrypts results."""

from __future__ import annotations

from typing import Any

import pytest

from prtrace.dataset import event_table
from prtrace.dataset.trace_table import COLUMNS, GLUE_TYPES, parquet_key


def only(template_json: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == kind]
    return found


def glue_table(template_json: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [
        r["Properties"]["TableInput"]
        for r in template_json["Resources"].values()
        if r["Type"] == "AWS::Glue::Table" and r["Properties"]["TableInput"]["Name"] == name
    ]
    return found


@pytest.mark.parametrize(
    ("name", "writers"), [("traces", COLUMNS), ("events", event_table.COLUMNS)]
)
def test_each_table_has_its_writers_columns_and_partitions(template_json, name, writers):
    table = glue_table(template_json, name)
    columns = table["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        (c.name, GLUE_TYPES[c.type]) for c in writers
    ]
    assert [p["Name"] for p in table["PartitionKeys"]] == ["tenant", "date"]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith(
        "ParquetHiveSerDe"
    )


def test_partitions_are_projected_with_the_tenant_injected(template_json):
    parameters = glue_table(template_json, "traces")["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.tenant.type"] == "injected"
    assert parameters["projection.date.type"] == "date"
    location = parameters["storage.location.template"]
    joined = "".join(str(part) for part in location["Fn::Join"][1])
    # The template names where Record writes, with the date directory projected.
    assert joined.endswith("/tenants/${tenant}/parquet/traces/date=${date}/")
    written = parquet_key("${tenant}", "tr_X", "2026-01-02T00:00:00.000Z")
    assert written == "tenants/${tenant}/parquet/traces/date=2026-01-02/tr_X.parquet"
    events = glue_table(template_json, "events")["Parameters"]
    assert {k: v for k, v in events.items() if k != "storage.location.template"} == {
        k: v for k, v in parameters.items() if k != "storage.location.template"
    }
    location = events["storage.location.template"]
    joined = "".join(str(part) for part in location["Fn::Join"][1])
    assert joined.endswith("/tenants/${tenant}/parquet/events/date=${date}/")


def test_athena_results_are_encrypted_and_enforced(template_json):
    workgroup = only(template_json, "AWS::Athena::WorkGroup")["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True
    encryption = workgroup["ResultConfiguration"]["EncryptionConfiguration"]
    assert encryption["EncryptionOption"] == "SSE_S3"
