"""`prtrace query "SQL"`: DuckDB over the Parquet traces table (prtrace.dataset.trace_table) of one
tenant, the same files Athena queries through the Glue table on AWS.

DuckDB reads local files (its S3 extension is a download this machine may not reach), so
the command first brings the tenant's table up to date in a local cache: it lists the
tenant's prefix and downloads the files it does not have yet (they are written once and
never change, so a file already cached is never fetched again). The query then sees a view
`traces` with the table's columns plus `tenant` and `date` (from the partition path).
Like `prtrace tokens`, it uses the AWS credentials and endpoint of the environment
(AWS_ENDPOINT_URL for the local cloud).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from prtrace_cli.console import LazyConsole, escape
from prtrace_cli.extras import require_server_packages

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

err = LazyConsole(stderr=True, soft_wrap=True)


@dataclass(frozen=True)
class Synced:
    files: int
    downloaded: int
    bytes_downloaded: int


def cache_root(bucket: str, tenant: str, base: Path | None = None) -> Path:
    root = base or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "prtrace"
    return root / "query" / bucket / tenant


def sync_table(s3: S3Client, bucket: str, tenant: str, cache: Path) -> Synced:
    """Download the tenant's table files the cache does not hold yet."""
    from prtrace.dataset.trace_table import table_prefix

    prefix = f"{table_prefix(tenant)}/"
    files = downloaded = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            relative = key[len(prefix) :]
            if not relative.endswith(".parquet") or ".." in relative.split("/"):
                continue
            files += 1
            target = cache / relative
            if target.is_file() and target.stat().st_size == item["Size"]:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            partial = target.with_suffix(".partial")
            partial.write_bytes(body)
            partial.replace(target)
            downloaded += 1
            size += len(body)
    return Synced(files, downloaded, size)


def run_query(cache: Path, tenant: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` with a view `traces` over the cached files; (column names, rows)."""
    import duckdb

    from prtrace.dataset.trace_table import COLUMNS, GLUE_TYPES

    connection = duckdb.connect(":memory:")
    files = sorted(cache.glob("date=*/*.parquet"))
    if files:
        listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        source = f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true)"
        quoted = tenant.replace("'", "''")
        connection.execute(
            f"CREATE VIEW traces AS SELECT '{quoted}' AS tenant, * FROM {source}"  # noqa: S608
        )
    else:  # no complete trace yet: an empty table with the same columns
        types = {"string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN"}
        columns = ", ".join(f'NULL::{types[GLUE_TYPES[c.type]]} AS "{c.name}"' for c in COLUMNS)
        connection.execute(
            f"CREATE VIEW traces AS SELECT NULL::VARCHAR AS tenant, {columns}, "
            "NULL::VARCHAR AS date WHERE false"
        )
    result = connection.execute(sql)
    names = [d[0] for d in result.description or []]
    return names, result.fetchall()


def query(
    sql: Annotated[str, typer.Argument(help="SQL over the view `traces` (DuckDB dialect).")],
    tenant: Annotated[str, typer.Option(help="The tenant whose traces to query.")],
    bucket: Annotated[
        str | None,
        typer.Option(help="The data bucket (default: $PRTRACE_BUCKET).", show_default=False),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="Local cache of the table's files (default: ~/.cache/prtrace/query)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row.")] = False,
) -> None:
    """Query the tenant's complete traces (the Parquet traces table) with DuckDB."""
    require_server_packages("query")
    from prtrace.settings import ConfigurationError, QuerySettings

    try:
        bucket = QuerySettings.from_env(**({"bucket": bucket} if bucket else {})).bucket
    except ConfigurationError as error:
        raise typer.BadParameter(
            f"pass --bucket or set PRTRACE_BUCKET: {error}", param_hint="--bucket"
        ) from None
    from prtrace.tokens import TENANT_PATTERN

    if not TENANT_PATTERN.fullmatch(tenant):
        raise typer.BadParameter(f"{tenant!r} is not a tenant name", param_hint="--tenant")
    import boto3
    import duckdb

    directory = cache_root(bucket, tenant, cache)
    synced = sync_table(boto3.client("s3"), bucket, tenant, directory)
    where = escape(str(directory))
    err.print(f"traces table: {synced.files} files ({synced.downloaded} downloaded) in {where}")
    try:
        names, rows = run_query(directory, tenant, sql)
    except duckdb.Error as error:
        err.print(f"[red]query failed:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    if as_json:
        for row in rows:
            typer.echo(orjson.dumps(dict(zip(names, row, strict=True)), default=str).decode())
        return
    typer.echo("\t".join(names))
    for row in rows:
        typer.echo("\t".join("" if v is None else str(v) for v in row))


def register(app: typer.Typer) -> None:
    app.command("query")(query)
