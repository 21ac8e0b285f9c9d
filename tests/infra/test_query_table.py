"""The Glue table Athena queries the Parquet traces table through: its columns are the
writer's, partitions are projected (the tenant injected, so every query names one), its
location is where Record writes; the Athena workgroup encrypts results."""

from __future__ import annotations

from typing import Any

from prtrace.dataset.trace_table import COLUMNS, GLUE_TYPES, parquet_key


def only(template_json: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == kind]
    return found


def test_the_table_has_the_writers_columns_and_partitions(template_json):
    table = only(template_json, "AWS::Glue::Table")["TableInput"]
    columns = table["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        (c.name, GLUE_TYPES[c.type]) for c in COLUMNS
    ]
    assert [p["Name"] for p in table["PartitionKeys"]] == ["tenant", "date"]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith(
        "ParquetHiveSerDe"
    )


def test_partitions_are_projected_with_the_tenant_injected(template_json):
    parameters = only(template_json, "AWS::Glue::Table")["TableInput"]["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.tenant.type"] == "injected"
    assert parameters["projection.date.type"] == "date"
    location = parameters["storage.location.template"]
    joined = "".join(str(part) for part in location["Fn::Join"][1])
    # The template names where Record writes, with the date directory projected.
    assert joined.endswith("/tenants/${tenant}/parquet/traces/date=${date}/")
    written = parquet_key("${tenant}", "tr_X", "2026-01-02T00:00:00.000Z")
    assert written == "tenants/${tenant}/parquet/traces/date=2026-01-02/tr_X.parquet"


def test_athena_results_are_encrypted_and_enforced(template_json):
    workgroup = only(template_json, "AWS::Athena::WorkGroup")["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True
    encryption = workgroup["ResultConfiguration"]["EncryptionConfiguration"]
    assert encryption["EncryptionOption"] == "SSE_S3"
