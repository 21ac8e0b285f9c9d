"""QA's private package proxy: a CodeArtifact repository with PyPI as its upstream (external
connection `public:pypi`), reached from the QA VPC's isolated subnets through the
`codeartifact.repositories` interface endpoint (and `codeartifact.api`, which AWS requires
beside it for the repositories endpoint's private DNS).

Only the QA task's security group may connect to the repositories endpoint, and the
endpoints' policies admit only this account's principals and only this domain and
repository: the endpoint is no way out to anyone else's CodeArtifact. PyPI packages need no
S3 endpoint. The task reads through the proxy with a read-only token that the PrepareQa
step obtains (`grant_read_token`) and hands over in the QA grant; the task role holds no
CodeArtifact permission.

Names are built as plain strings (no reference to the CodeArtifact resources), so the
template deploys where CodeArtifact is not modelled (the local cloud).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Aws, Stack
from aws_cdk import aws_codeartifact as codeartifact
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra_cdk.config import QA_STATE_TIMEOUT_S, StackConfig
from infra_cdk.nag import acknowledge

REPOSITORY: Final = "qa-pypi"
PYPI_UPSTREAM: Final = "public:pypi"
# The token must outlive the QA task's last preparation (the QA state's own timeout).
TOKEN_DURATION_S: Final = QA_STATE_TIMEOUT_S


class PackageProxy(Construct):
    """The domain, its PyPI proxy repository and the QA VPC's two CodeArtifact endpoints."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection | None = None,
    ) -> None:
        """`subnets`: where the endpoints' interfaces go (one subnet per zone)."""
        super().__init__(scope, construct_id)
        self.domain_name = config.prefix  # prtrace-<stage>: a valid domain name
        self.repository_name = REPOSITORY
        domain = codeartifact.CfnDomain(self, "Domain", domain_name=self.domain_name)
        repository = codeartifact.CfnRepository(
            self,
            "PyPI",
            domain_name=self.domain_name,
            repository_name=self.repository_name,
            description="PyPI for the QA task's dependency step (read-only, through the VPC)",
            external_connections=[PYPI_UPSTREAM],
        )
        repository.node.add_dependency(domain)  # the name alone makes no dependency
        stack = Stack.of(self)
        self.domain_arn = stack.format_arn(
            service="codeartifact", resource="domain", resource_name=self.domain_name
        )
        self.repository_arn = stack.format_arn(
            service="codeartifact",
            resource="repository",
            resource_name=f"{self.domain_name}/{self.repository_name}",
        )
        # prtrace.qa.package_index.codeartifact_index_url, with the deploy-time account and
        # region (the endpoint's private DNS answers for it inside the VPC).
        self.index_url = (
            f"https://{self.domain_name}-{Aws.ACCOUNT_ID}.d.codeartifact.{Aws.REGION}"
            f".amazonaws.com/pypi/{self.repository_name}/simple/"
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "RepositoriesEndpointSecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="CodeArtifact repositories endpoint: HTTPS from the QA task only",
        )
        api_security_group = ec2.SecurityGroup(
            self,
            "ApiEndpointSecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="CodeArtifact API endpoint: no client in the VPC calls it (PrepareQa "
            "gets the token); present for the private DNS of the repositories endpoint",
        )
        account = iam.AccountRootPrincipal()
        self.api_endpoint = vpc.add_interface_endpoint(
            "CodeArtifactApi",
            service=ec2.InterfaceVpcEndpointAwsService.CODEARTIFACT_API,
            private_dns_enabled=True,
            subnets=subnets,
            security_groups=[api_security_group],
            open=False,
        )
        self.api_endpoint.add_to_policy(
            iam.PolicyStatement(
                principals=[account],
                actions=["codeartifact:GetAuthorizationToken"],
                resources=[self.domain_arn],
            )
        )
        self.repositories_endpoint = vpc.add_interface_endpoint(
            "CodeArtifactRepositories",
            service=ec2.InterfaceVpcEndpointAwsService.CODEARTIFACT_REPOSITORIES,
            private_dns_enabled=True,
            subnets=subnets,
            security_groups=[self.security_group],
            open=False,
        )
        self.repositories_endpoint.add_to_policy(
            iam.PolicyStatement(
                principals=[account],
                actions=["codeartifact:ReadFromRepository"],
                resources=[self.repository_arn],
            )
        )
        # Its private DNS zone sits under the API endpoint's: create it second.
        self.repositories_endpoint.node.add_dependency(self.api_endpoint)

    @property
    def task_environment(self) -> dict[str, str]:
        """The QA task's settings: its dependency step has network, to this index only."""
        return {
            "PRTRACE_QA_DEPENDENCY_NETWORK": "true",
            "PRTRACE_QA_PACKAGE_INDEX": self.index_url,
        }

    @property
    def token_environment(self) -> dict[str, str]:
        """PrepareQa's settings (prtrace.qa.package_index.CodeArtifactSettings)."""
        return {
            "PRTRACE_QA_CODEARTIFACT_DOMAIN": self.domain_name,
            "PRTRACE_QA_CODEARTIFACT_OWNER": Aws.ACCOUNT_ID,
            "PRTRACE_QA_CODEARTIFACT_REPOSITORY": self.repository_name,
            "PRTRACE_QA_CODEARTIFACT_TOKEN_DURATION_S": str(TOKEN_DURATION_S),
        }

    def admit(self, client: ec2.ISecurityGroup) -> None:
        """HTTPS from the QA task to the repositories endpoint, and nothing else (the
        endpoint's ingress rule and the task's egress rule)."""
        self.repositories_endpoint.connections.allow_from(
            client, ec2.Port.tcp(443), "the QA task's dependency step"
        )

    def grant_read_token(self, grantee: iam.IGrantable) -> None:
        """What PrepareQa needs to hand out a read-only token: the token carries its
        caller's CodeArtifact permissions, so the caller may only read this repository."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["codeartifact:GetAuthorizationToken"], resources=[self.domain_arn]
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["codeartifact:ReadFromRepository"], resources=[self.repository_arn]
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sts:GetServiceBearerToken"],
                resources=["*"],  # the action takes no resource
                conditions={"StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}},
            )
        )
        if isinstance(grantee.grant_principal, Construct):
            acknowledge(
                grantee.grant_principal,
                "AwsSolutions-IAM5[Resource::*]",
                "sts:GetServiceBearerToken takes no resource; limited to CodeArtifact's service "
                "name by its condition.",
            )


class NoPackageProxy:
    """`qa_package_proxy: false` (the local cloud, where CodeArtifact is not modelled): the
    QA task installs nothing from outside, as before."""

    task_environment: Final = {"PRTRACE_QA_DEPENDENCY_NETWORK": "false"}
    token_environment: Final[dict[str, str]] = {}

    def admit(self, client: ec2.ISecurityGroup) -> None:
        return None

    def grant_read_token(self, grantee: iam.IGrantable) -> None:
        return None


def package_proxy(
    scope: Construct,
    *,
    config: StackConfig,
    vpc: ec2.IVpc,
    subnets: ec2.SubnetSelection | None = None,
) -> PackageProxy | NoPackageProxy:
    if not config.qa_package_proxy:
        return NoPackageProxy()
    return PackageProxy(scope, "PackageProxy", config=config, vpc=vpc, subnets=subnets)
