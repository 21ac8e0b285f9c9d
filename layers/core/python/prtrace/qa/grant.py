"""The QA task's grant: presigned requests for exactly one trace's QA inputs and outputs.

The QA task runs untrusted test code, so it holds no AWS credentials: the PrepareQa step
(functions/qa_grant) signs these requests with its own role and the state machine hands
them to the task in one environment variable, `PRTRACE_QA_GRANT` (this model as JSON).

What a grant allows, and nothing else, until `expires_at`:
- GET of the trace's document and of its two workspace snapshots (keys and BlobRefs: the
  task still checks each snapshot's SHA-256 and size);
- one PUT of the trace's QA report, write-once: the URL signs `If-None-Match: *`, so a
  request without it fails the signature, and S3 refuses it when the report exists (412);
- POSTs (an S3 POST policy) of QA's content-addressed logs and JUnit files: any key under
  the trace's `artifacts/sha256/` prefix, at most `ARTIFACT_MAX_BYTES` each. Their keys are
  digests known only at run time, hence a prefix; S3 has no conditional POST, so until
  the grant expires its holder could replace an artifact of this one trace. Every such
  key names its SHA-256, which every reader checks (QA on snapshots, Assemble on
  artifacts), and nothing outside the trace is reachable.

Size: ECS caps a RunTask's container overrides at 8,192 characters, and each presigned
request repeats the signer's session token (about 1,100 characters in a Lambda). The grant
keeps the URLs' origin and shared query parameters once and the POST form without the
token; `GRANT_MAX_CHARS` leaves the rest of the override room, and `build_grant`
refuses a grant over it with a clear error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, ClassVar, Final, Literal, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from prtrace.ports import PresignedUpload
from prtrace.schema import BlobRef
from prtrace.settings import EnvSettings
from prtrace.storage_keys import artifact_key, trace_prefix

GRANT_VARIABLE: Final = "PRTRACE_QA_GRANT"
# ECS: "all container overrides of a RunTask: at most 8,192 characters" (JSON included);
# 512 of them stay for the override's JSON, the container's and the variable's names and a
# few short variables (tenant, trace id).
ECS_OVERRIDES_MAX_CHARS: Final = 8192
GRANT_MAX_CHARS: Final = ECS_OVERRIDES_MAX_CHARS - 512
# A log is stdout and stderr capped by the sandbox's output limit; a JUnit file is read up
# to 32 MiB (prtrace.qa.service): one bound for both, far above either in practice.
ARTIFACT_MAX_BYTES: Final = 64 * 1024 * 1024
REPORT_CONTENT_TYPE: Final = "application/json"
_TOKEN_QUERY: Final = "X-Amz-Security-Token"  # noqa: S105 (a parameter's name)
_TOKEN_FIELD: Final = "x-amz-security-token"  # noqa: S105 (a form field's name)
_SHA256: Final = re.compile("[0-9a-f]{64}")
_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Keys whose URL path is the key itself (nothing to percent-encode): URLs are rebuilt from
# origin + key. Tenants, trace ids and digests use only these characters.
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9._/-]+")
READS: Final = ("document", "base", "final")

_Key = Annotated[str, Field(min_length=1, max_length=1024)]
_Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,128}$")]


class GrantError(ValueError):
    """A grant that cannot be made or read: says what and where."""


@dataclass(frozen=True)
class PresignedForm:
    """An S3 POST: the URL and the form fields its signed policy requires."""

    url: str
    fields: dict[str, str]


class Presigner(Protocol):
    """Signs requests for one bucket (prtrace.adapters.presign: S3 with the step's role)."""

    def presign_get(self, key: str, expires_in: int) -> str: ...

    def presign_put_if_absent(
        self, key: str, content_type: str, expires_in: int
    ) -> PresignedUpload:
        """A PUT of `key` that signs `If-None-Match: *` (and the content type)."""
        ...

    def presign_post_under(self, key_prefix: str, max_bytes: int, expires_in: int) -> PresignedForm:
        """A POST policy: any key starting with `key_prefix`, 1 to `max_bytes` bytes."""
        ...


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class GrantedRead(_Frozen):
    key: _Key
    query: dict[str, str]  # the URL's own parameters (its signature): QaGrant.url


class GrantedSnapshot(GrantedRead):
    ref: BlobRef


class GrantedReportWrite(GrantedRead):
    headers: dict[str, str]  # signed: send exactly these


class GrantedArtifactWrites(_Frozen):
    key_prefix: _Key
    max_bytes: int
    url: str
    fields: dict[str, str]  # the policy's form fields, without the session token


class QaGrant(_Frozen):
    """What one QA task may read and write (module docstring)."""

    version: Literal[1] = 1
    tenant: _Id
    trace_id: _Id
    expires_at: AwareDatetime
    origin: str  # each URL is origin + key + "?" + its own and the shared parameters
    shared_query: dict[str, str]
    document: GrantedRead
    base: GrantedSnapshot
    final: GrantedSnapshot
    report: GrantedReportWrite
    artifacts: GrantedArtifactWrites
    # The private package proxy's read token for the dependency step (CodeArtifact's, when
    # the stack has the proxy): read-only, for public packages, expiring with the task.
    package_index_token: str | None = None

    def to_env(self) -> str:
        """The value of PRTRACE_QA_GRANT: compact JSON."""
        return self.model_dump_json()

    def url(self, granted: GrantedRead) -> str:
        # Parameter order is free: SigV4 signs the sorted query string.
        return _with_query(self.origin + granted.key, granted.query | self.shared_query)

    def read_url(self, key: str) -> str | None:
        """The GET URL of `key`, or None when the grant does not cover it."""
        for read in (self.document, self.base, self.final):
            if read.key == key:
                return self.url(read)
        return None

    def artifact_post(self) -> PresignedForm:
        fields = dict(self.artifacts.fields)
        if _TOKEN_QUERY in self.shared_query:
            fields[_TOKEN_FIELD] = self.shared_query[_TOKEN_QUERY]
        return PresignedForm(self.artifacts.url, fields)

    def may_post(self, key: str) -> bool:
        """Whether `key` is one of QA's content-addressed artifacts of this trace."""
        rest = key.removeprefix(self.artifacts.key_prefix)
        return rest != key and _SHA256.fullmatch(rest) is not None


def parse_grant(text: str) -> QaGrant:
    """PRTRACE_QA_GRANT's value; GrantError names the bad fields (never their values: the
    grant is a bearer credential)."""
    try:
        return QaGrant.model_validate_json(text)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "(the value)" for e in exc.errors()})
        raise GrantError(f"{GRANT_VARIABLE} is not a valid QA grant: {', '.join(fields)}") from None


def env_chars(grant: QaGrant) -> int:
    """Characters the grant takes in the ECS overrides: a JSON string there (quotes escaped)."""
    return len(json.dumps(grant.to_env()))


def _with_query(base: str, query: dict[str, str]) -> str:
    return base + "?" + urlencode(query, quote_via=quote, safe="") if query else base


def _split(url: str, key: str) -> tuple[str, dict[str, str]]:
    """The URL's origin (all before the key) and its query parameters."""
    parts = urlsplit(url)
    path = urlunsplit(parts._replace(query=""))
    if not path.endswith("/" + key):
        raise GrantError(f"a presigned URL's path does not end with its key {key!r}")
    return path.removesuffix(key), dict(parse_qsl(parts.query, keep_blank_values=True))


def build_grant(
    presigner: Presigner,
    *,
    tenant: str,
    trace_id: str,
    document_key: str,
    report_key: str,
    base: BlobRef,
    final: BlobRef,
    expires_in: int,
    now: datetime,
    package_index_token: str | None = None,
) -> QaGrant:
    """The grant for one trace's QA task, valid `expires_in` seconds from `now`. Raises
    GrantError when a key lies outside the trace or the grant would not fit ECS."""
    for name, value in (("tenant", tenant), ("trace_id", trace_id)):
        if not _ID.fullmatch(value):
            raise GrantError(f"{name} {value!r}: 1-128 of A-Z a-z 0-9 . _ -")
    prefix = trace_prefix(tenant, trace_id) + "/"
    for name, key in (("document_key", document_key), ("qa_report_key", report_key)):
        if not key.startswith(prefix) or not _PLAIN_KEY.fullmatch(key):
            raise GrantError(f"{name} {key!r} is not a plain key under the trace's {prefix}")
    keys = {
        "document": document_key,
        "base": artifact_key(tenant, trace_id, base.sha256),
        "final": artifact_key(tenant, trace_id, final.sha256),
        "report": report_key,
    }
    urls = {name: presigner.presign_get(keys[name], expires_in) for name in READS}
    put = presigner.presign_put_if_absent(report_key, REPORT_CONTENT_TYPE, expires_in)
    urls["report"] = put.url
    artifact_prefix = artifact_key(tenant, trace_id, "")
    post = presigner.presign_post_under(artifact_prefix, ARTIFACT_MAX_BYTES, expires_in)

    # The origin and the parameters every URL carries with the same value (credential,
    # date, expiry, session token) are kept once; the POST form's token is that token.
    split = {name: _split(url, keys[name]) for name, url in urls.items()}
    origins = {origin for origin, _ in split.values()}
    if len(origins) != 1:
        raise GrantError("the presigned URLs do not share one origin")
    queries = [query for _, query in split.values()]
    shared = {k: v for k, v in queries[0].items() if all(q.get(k) == v for q in queries[1:])}

    def own(name: str) -> dict[str, str]:
        return {k: v for k, v in split[name][1].items() if k not in shared}

    fields = dict(post.fields)
    if _TOKEN_FIELD in fields and fields[_TOKEN_FIELD] == shared.get(_TOKEN_QUERY):
        del fields[_TOKEN_FIELD]
    grant = QaGrant(
        tenant=tenant,
        trace_id=trace_id,
        expires_at=now + timedelta(seconds=expires_in),
        origin=origins.pop(),
        shared_query=shared,
        document=GrantedRead(key=keys["document"], query=own("document")),
        base=GrantedSnapshot(key=keys["base"], query=own("base"), ref=base),
        final=GrantedSnapshot(key=keys["final"], query=own("final"), ref=final),
        report=GrantedReportWrite(key=report_key, query=own("report"), headers=put.headers),
        artifacts=GrantedArtifactWrites(
            key_prefix=artifact_prefix, max_bytes=ARTIFACT_MAX_BYTES, url=post.url, fields=fields
        ),
        package_index_token=package_index_token,
    )
    size = env_chars(grant)
    if size > GRANT_MAX_CHARS:
        token = len(shared.get(_TOKEN_QUERY, ""))
        raise GrantError(
            f"the QA grant takes {size} characters, more than the {GRANT_MAX_CHARS} left for "
            f"it in ECS's {ECS_OVERRIDES_MAX_CHARS}-character container overrides (the "
            f"signing session's token alone: {token} characters; the package index's: "
            f"{len(package_index_token or '')})"
        )
    return grant


class QaGrantSettings(EnvSettings):
    """The PrepareQa step: the data bucket and how long its URLs live."""

    used_by: ClassVar[str] = "PrepareQa"

    bucket: Annotated[str, Field(min_length=3)]
    qa_grant_ttl_s: Annotated[
        int,
        Field(
            ge=60,
            le=12 * 3600,
            description="lifetime of the QA task's presigned URLs (the QA state's timeout "
            "plus a margin); they end sooner if the signing session does",
        ),
    ] = 4500
