"""`prtrace query "SQL"`: DuckDB over the Parquet traces and events tables of one tenant
(prtrace.dataset.trace_table, prtrace.dataset.event_table), the same files Athena queries
through the Glue tables on AWS.

DuckDB reads local files (its S3 extension is a download this machine may not reach), so
the command first brings the tenant's tables up to date in a local cache: it lists the
tenant's prefixes and downloads the files it does not have yet (they are written once and
never change, so a file already cached is never fetched again). The query then sees views
`traces` and `events` with the tables' columns plus `tenant` and `date` (from the
partition path).
Like `prtrace tokens`, it uses the AWS credentials and endpoint of the environment
(AWS_ENDPOINT_URL for the local cloud).

The bucket is the first of: `--bucket`, $PRTRACE_BUCKET, and a local cloud's record of its
resources (`.prtrace/local.json`, found from the working directory up, as the client finds
its endpoint), whose AWS endpoint and region are then used unless the environment names
its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from prtrace_cli.console import LazyConsole, escape
from prtrace_cli.extras import require_server_packages

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from prtrace.dataset.parquet_lite import Column

err = LazyConsole(stderr=True, soft_wrap=True)


@dataclass(frozen=True)
class Synced:
    files: int
    downloaded: int
    bytes_downloaded: int


LOCAL_CLOUD_STATE = Path(".prtrace") / "local.json"
BUCKET_OUTPUT = "DataBucketName"  # the stack output naming the data bucket


@dataclass(frozen=True)
class BucketSource:
    bucket: str
    source: str  # where it was found, for messages
    endpoint: str | None = None  # the local cloud's AWS endpoint, when it came from there
    region: str | None = None


def local_cloud_state(start: Path) -> Path | None:
    """The nearest `.prtrace/local.json` from `start` up (a running local cloud's record)."""
    for directory in (start, *start.parents):
        state = directory / LOCAL_CLOUD_STATE
        if state.is_file():
            return state
    return None


def find_bucket(option: str | None, env: Mapping[str, str], cwd: Path) -> BucketSource:
    """The data bucket from --bucket, $PRTRACE_BUCKET or the local cloud's local.json (in
    that order); typer.BadParameter naming every place looked in when none has it."""
    if option:
        return BucketSource(option, "--bucket")
    if env.get("PRTRACE_BUCKET"):
        return BucketSource(env["PRTRACE_BUCKET"], "$PRTRACE_BUCKET")
    state = local_cloud_state(cwd)
    problem = f"no {LOCAL_CLOUD_STATE} in {cwd} or above"
    if state is not None:
        try:
            document = json.loads(state.read_text())
            bucket = document["outputs"][BUCKET_OUTPUT]
            if not isinstance(bucket, str) or not bucket:
                raise TypeError(BUCKET_OUTPUT)
        except (OSError, ValueError, KeyError, TypeError):
            problem = f"{state} names no outputs.{BUCKET_OUTPUT}"
        else:
            endpoint, region = document.get("aws_endpoint"), document.get("region")
            return BucketSource(
                bucket,
                str(state),
                endpoint if isinstance(endpoint, str) and endpoint else None,
                region if isinstance(region, str) and region else None,
            )
    raise typer.BadParameter(
        f"no data bucket: pass --bucket, set PRTRACE_BUCKET, or start a local cloud "
        f"(`make local` writes {LOCAL_CLOUD_STATE}); {problem}",
        param_hint="--bucket",
    )


def s3_client(found: BucketSource) -> S3Client:
    """The environment's S3 client; the local cloud's, when the bucket came from its
    local.json and the environment names no endpoint of its own: its endpoint and region,
    and the dummy credentials it accepts (the environment's are not sent to it)."""
    import boto3

    if not found.endpoint or os.environ.get("AWS_ENDPOINT_URL"):
        return boto3.client("s3")
    return boto3.client(
        "s3",
        endpoint_url=found.endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION") or found.region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local cloud's dummy credentials
    )


def cache_root(bucket: str, tenant: str, base: Path | None = None) -> Path:
    root = base or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "prtrace"
    return root / "query" / bucket / tenant


TABLES = ("traces", "events")


def _table_prefix(table: str, tenant: str) -> str:
    from prtrace.dataset import event_table, trace_table

    return (
        trace_table.table_prefix(tenant) if table == "traces" else event_table.table_prefix(tenant)
    )


def _table_columns(table: str) -> tuple[Column, ...]:
    from prtrace.dataset import event_table, trace_table

    return trace_table.COLUMNS if table == "traces" else event_table.COLUMNS


def sync_table(
    s3: S3Client, bucket: str, tenant: str, cache: Path, table: str = "traces"
) -> Synced:
    """Download the files of the tenant's `table` the cache (cache/table/) does not hold yet."""
    prefix = f"{_table_prefix(table, tenant)}/"
    cache = cache / table
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
    """Run `sql` with views `traces` and `events` over the cached files; (names, rows)."""
    import duckdb

    connection = duckdb.connect(":memory:")
    for table in TABLES:
        connection.execute(_view(table, cache / table, tenant))
    result = connection.execute(sql)
    names = [d[0] for d in result.description or []]
    return names, result.fetchall()


_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}


def _view(table: str, directory: Path, tenant: str) -> str:
    files = sorted(directory.glob("date=*/*.parquet"))
    quoted = tenant.replace("'", "''")
    if files:
        listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        source = f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true)"
        return f"CREATE VIEW {table} AS SELECT '{quoted}' AS tenant, * FROM {source}"  # noqa: S608
    # No file yet: an empty table with the same columns.
    columns = ", ".join(
        f'NULL::{_DUCKDB_TYPES[c.type]} AS "{c.name}"' for c in _table_columns(table)
    )
    return (
        f"CREATE VIEW {table} AS SELECT NULL::VARCHAR AS tenant, {columns}, "
        "NULL::VARCHAR AS date WHERE false"
    )


def query(
    sql: Annotated[
        str, typer.Argument(help="SQL over the views `traces` and `events` (DuckDB dialect).")
    ],
    tenant: Annotated[str, typer.Option(help="The tenant whose traces to query.")],
    bucket: Annotated[
        str | None,
        typer.Option(
            help="The data bucket (default: $PRTRACE_BUCKET, else the local cloud's "
            ".prtrace/local.json).",
            show_default=False,
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="Local cache of the table's files (default: ~/.cache/prtrace/query)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row.")] = False,
) -> None:
    """Query the tenant's ended traces and their events (the Parquet tables) with DuckDB."""
    require_server_packages("query")
    found = find_bucket(bucket, os.environ, Path.cwd())
    from prtrace.settings import ConfigurationError, QuerySettings

    try:
        bucket = QuerySettings.from_env(bucket=found.bucket).bucket
    except ConfigurationError as error:
        raise typer.BadParameter(f"{error} (from {found.source})", param_hint="--bucket") from None
    from prtrace.tokens import TENANT_PATTERN

    if not TENANT_PATTERN.fullmatch(tenant):
        raise typer.BadParameter(f"{tenant!r} is not a tenant name", param_hint="--tenant")
    import duckdb

    directory = cache_root(bucket, tenant, cache)
    s3 = s3_client(found)
    for table in TABLES:
        synced = sync_table(s3, bucket, tenant, directory, table)
        where = escape(str(directory / table))
        err.print(
            f"{table} table: {synced.files} files ({synced.downloaded} downloaded) in {where}"
        )
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
