"""The package index QA's dependency step installs from (a PEP 503 simple index).

On AWS the QA task has no route out: its dependency step reaches only a CodeArtifact
repository that proxies PyPI (external connection `public:pypi`), through the VPC's
CodeArtifact endpoints. CodeArtifact wants an authorization token (HTTP basic auth, user
`aws`), which the pipeline's PrepareQa step obtains (`codeartifact:GetAuthorizationToken`)
and hands to the task with its grant: the task role itself holds no permission.

The token is read-only, for a proxy of public packages, and short-lived. It is given to
the dependency step only, which runs the repository's build code (`setup.py`): that code
can read it, which is accepted (it can fetch public packages through this proxy, nothing
else); the test runs get neither it nor any other variable of ours. It is kept out of
everything QA writes: `redact` replaces it in pip's output before that becomes a report's
detail, and `PackageIndex` never shows it in its repr.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Final
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from prtrace.settings import EnvSettings

CODEARTIFACT_USER: Final = "aws"
REDACTED: Final = "****"
# CodeArtifact's names (API reference: CreateDomain, CreateRepository) and a 12-digit owner.
_DOMAIN = re.compile(r"^[a-z][a-z0-9\-]{0,48}[a-z0-9]$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{1,99}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def check_index_url(url: str) -> str:
    """A simple index's URL as configured: http(s), a host, no credentials in it (they come
    separately, so the URL can be shown and logged), no query or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an http(s) URL of a simple index, e.g. https://host/simple/")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "must not carry credentials: give the token as PRTRACE_QA_PACKAGE_INDEX_TOKEN"
        )
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return url if url.endswith("/") else url + "/"


class PackageIndex(BaseModel):
    """An index and the credentials to use it: `url` is safe to show, `token` is not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    username: Annotated[str, Field(min_length=1, pattern=r"^[^:@/\s]+$")] = CODEARTIFACT_USER
    token: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _plain_url(cls, value: str) -> str:
        return check_index_url(value)

    @property
    def host(self) -> str:
        """host[:port], as pip's --trusted-host takes it."""
        return urlsplit(self.url).netloc

    @property
    def plain_http(self) -> bool:
        return urlsplit(self.url).scheme == "http"

    def pip_url(self) -> str:
        """The URL pip is given (PIP_INDEX_URL): with the credentials, when there is a
        token. Secret: only for the dependency step's environment."""
        if self.token is None:
            return self.url
        parts = urlsplit(self.url)
        user = quote(self.username, safe="")
        secret = quote(self.token.get_secret_value(), safe="")
        return urlunsplit(parts._replace(netloc=f"{user}:{secret}@{parts.netloc}"))

    def redact(self, text: str) -> str:
        """`text` without the token, whether as given or URL-quoted (as in a URL)."""
        if self.token is None:
            return text
        token = self.token.get_secret_value()
        for form in {token, quote(token, safe="")}:
            if form:
                text = text.replace(form, REDACTED)
        return text


def codeartifact_index_url(*, domain: str, owner: str, repository: str, region: str) -> str:
    """The simple index of a CodeArtifact PyPI repository (as GetRepositoryEndpoint gives
    it, plus `simple/`), reached through the `codeartifact.repositories` VPC endpoint's
    private DNS inside the VPC."""
    for value, pattern, what in (
        (domain, _DOMAIN, "domain"),
        (owner, _ACCOUNT, "domain owner (a 12-digit account id)"),
        (repository, _REPOSITORY, "repository"),
        (region, _REGION, "region"),
    ):
        if not pattern.match(value):
            raise ValueError(f"not a CodeArtifact {what}: {value!r}")
    return (
        f"https://{domain}-{owner}.d.codeartifact.{region}.amazonaws.com/pypi/{repository}/simple/"
    )


def codeartifact_index(
    *, domain: str, owner: str, repository: str, region: str, token: str
) -> PackageIndex:
    """The index with the token GetAuthorizationToken returned (user `aws`)."""
    if not token:
        raise ValueError("the CodeArtifact authorization token is empty")
    url = codeartifact_index_url(domain=domain, owner=owner, repository=repository, region=region)
    return PackageIndex(url=url, username=CODEARTIFACT_USER, token=SecretStr(token))


class CodeArtifactSettings(EnvSettings):
    """Where the pipeline's PrepareQa step asks for the token (the stack sets these when it
    has the PyPI proxy: infra_cdk/package_proxy.py); the domain unset: no proxy, no token."""

    model_config = SettingsConfigDict(env_prefix="PRTRACE_QA_CODEARTIFACT_")
    used_by: ClassVar[str] = "PrepareQa"

    domain: Annotated[str | None, Field(description="the CodeArtifact domain; unset: none")] = None
    owner: Annotated[str | None, Field(description="its owner (account id)")] = None
    repository: Annotated[str | None, Field(description="the PyPI proxy repository")] = None
    region: Annotated[
        str | None, Field(validation_alias="AWS_REGION", description="the Lambda's region")
    ] = None
    token_duration_s: Annotated[
        int,
        Field(ge=900, le=43200, description="the token's lifetime: the QA task's longest run"),
    ] = 3600

    @model_validator(mode="after")
    def _complete(self) -> CodeArtifactSettings:
        if self.domain is not None:
            missing = [n for n in ("owner", "repository", "region") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    "PRTRACE_QA_CODEARTIFACT_DOMAIN is set without "
                    + ", ".join(self.variable(name) for name in missing)
                )
        return self

    @property
    def configured(self) -> bool:
        return self.domain is not None

    def token_request(self) -> dict[str, str | int]:
        """The arguments of CodeArtifact's GetAuthorizationToken (boto3's names)."""
        assert self.domain is not None, "no CodeArtifact domain is configured"
        return {
            "domain": self.domain,
            "domainOwner": str(self.owner),
            "durationSeconds": self.token_duration_s,
        }

    def index(self, token: str) -> PackageIndex:
        """The index, with the token GetAuthorizationToken returned."""
        assert self.domain is not None, "no CodeArtifact domain is configured"
        return codeartifact_index(
            domain=self.domain,
            owner=str(self.owner),
            repository=str(self.repository),
            region=str(self.region),
            token=token,
        )
