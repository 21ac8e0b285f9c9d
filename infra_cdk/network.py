"""The network the QA and export tasks run in: one VPC with no way out but its endpoints.

- Isolated subnets only (no internet or NAT gateway), in three groups: `qa` (the QA task,
  which runs untrusted tests), `export` (the export task) and `endpoints` (the interface
  endpoints' network interfaces).
- Every interface endpoint has its own security group, which admits HTTPS only from the
  task security groups `admit` names; every task's security group lets out only HTTPS to the
  endpoints it was admitted to and to the prefix list of the gateway endpoints it uses.
- The S3 gateway endpoint (both task subnet groups) admits only the data bucket and ECR's
  layer bucket, whoever signs the request (the QA task's presigned requests are signed by
  the PrepareQa step's role): a presigned PUT to anyone else's bucket goes nowhere. The
  DynamoDB gateway endpoint routes for the export subnets only.
- Route 53 Resolver DNS Firewall on the VPC resolves only the AWS names the tasks use and
  answers NXDOMAIN to every other name, so no query carries data to a name server someone
  else runs. Its failure mode stays closed: FirewallFailOpen is DISABLED unless changed
  (AWS::Route53Resolver::FirewallConfig, which neither this CDK nor this cfn-lint models).

Names are built from the stack's region, so the template deploys to any region.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import jsii
from aws_cdk import Annotations, Aws, IStableListProducer, Lazy, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53resolver as resolver
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra_cdk.config import StackConfig
from infra_cdk.lambdas import log_retention

QA_SUBNETS: Final = "qa"
EXPORT_SUBNETS: Final = "export"
ENDPOINT_SUBNETS: Final = "endpoints"
HTTPS: Final = ec2.Port.tcp(443)
# DNS Firewall evaluates associated rule groups by this priority (100 and 9900 are kept for
# Firewall Manager); the allow rule comes before the block-everything rule.
FIREWALL_ASSOCIATION_PRIORITY: Final = 1000
ALLOW_RULE_PRIORITY: Final = 100
BLOCK_RULE_PRIORITY: Final = 200

GatewayService = Literal["s3", "dynamodb"]
GATEWAY_NAMES: Final[dict[GatewayService, str]] = {"s3": "S3", "dynamodb": "DynamoDB"}


def ecr_layer_objects() -> str:
    """The S3 bucket ECR serves image layers from in this region (the ECR user guide's
    minimum S3 endpoint permissions for image pulls)."""
    return f"arn:{Aws.PARTITION}:s3:::prod-{Aws.REGION}-starport-layer-bucket/*"


def s3_names() -> list[str]:
    """S3 as the tasks and ECR's layer downloads name it: the global virtual-hosted names
    botocore signs presigned URLs with, and the regional ones."""
    return ["s3.amazonaws.com", "*.s3.amazonaws.com", *regional("s3", "*.s3")]


def regional(*services: str) -> list[str]:
    """`<service>.<region>.amazonaws.com` for each (a leading `*.` covers its subdomains)."""
    return [f"{service}.{Aws.REGION}.amazonaws.com" for service in services]


@jsii.implements(IStableListProducer)
class _ResolvableNames:
    """The DNS Firewall's allow list, filled while the stack is built (the export job and
    the package proxy add their endpoints' names after the VPC exists)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def produce(self) -> list[str]:
        return list(dict.fromkeys(self.names))


class TaskNetwork:
    """The VPC, its S3 gateway endpoint, the interface endpoints every Fargate task needs
    (ECR to pull its image, CloudWatch Logs for its log driver) and the DNS Firewall.

    Created in the caller's scope under the ids the VPC always had, so the synthesized
    logical ids of what existed before do not change."""

    def __init__(self, scope: Construct, *, config: StackConfig, bucket: s3.IBucket) -> None:
        self._config = config
        flow_logs = logs.LogGroup(
            scope, "FlowLogs", retention=log_retention(config), removal_policy=RemovalPolicy.DESTROY
        )
        self.vpc = ec2.Vpc(
            scope,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name=name, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
                for name in (QA_SUBNETS, EXPORT_SUBNETS, ENDPOINT_SUBNETS)
            ],
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
                )
            },
        )
        self.qa_subnets = self.vpc.select_subnets(subnet_group_name=QA_SUBNETS).subnets
        self.export_subnets = self.vpc.select_subnets(subnet_group_name=EXPORT_SUBNETS).subnets
        self._names = _ResolvableNames()

        self.s3 = self.vpc.add_gateway_endpoint(
            "S3",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[
                ec2.SubnetSelection(subnet_group_name=QA_SUBNETS),
                ec2.SubnetSelection(subnet_group_name=EXPORT_SUBNETS),
            ],
        )
        # Principal "*": the requests are signed by the tasks' roles, the PrepareQa step's
        # role (the QA task's presigned requests) and ECR (layer downloads); the resources
        # are what limits the endpoint.
        self.s3.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[bucket.arn_for_objects("*")],
            )
        )
        self.s3.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
            )
        )
        self.s3.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[ecr_layer_objects()],
            )
        )
        self.resolve(*s3_names())

        self.ecr_api = self.interface_endpoint(
            scope, "EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR, "ECR API", ["api.ecr"]
        )
        self.ecr_docker = self.interface_endpoint(
            scope,
            "EcrDocker",
            ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
            "ECR registry",
            ["*.dkr.ecr"],
        )
        self.logs = self.interface_endpoint(
            scope,
            "Logs",
            ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
            "CloudWatch Logs",
            ["logs"],
        )
        self._dns_firewall(scope)

    @property
    def image_and_logs(self) -> tuple[ec2.InterfaceVpcEndpoint, ...]:
        """What every Fargate task's own agent reaches: its image, its log driver."""
        return (self.ecr_api, self.ecr_docker, self.logs)

    def resolve(self, *names: str) -> None:
        """Let the VPC's resolver answer these names (everything else is NXDOMAIN)."""
        self._names.names.extend(names)

    def interface_endpoint(
        self,
        scope: Construct,
        name: str,
        service: ec2.IInterfaceVpcEndpointService,
        purpose: str,
        services: Sequence[str],
    ) -> ec2.InterfaceVpcEndpoint:
        """An interface endpoint in the endpoint subnets, with private DNS for the regional
        `services` names and its own security group, which admits no one until `admit`."""
        group = ec2.SecurityGroup(
            scope,
            f"{name}EndpointSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description=f"{purpose} endpoint: HTTPS from the tasks admitted to it only",
        )
        endpoint = self.vpc.add_interface_endpoint(
            name,
            service=service,
            private_dns_enabled=True,
            subnets=ec2.SubnetSelection(subnet_group_name=ENDPOINT_SUBNETS),
            security_groups=[group],
            open=False,
        )
        self.resolve(*regional(*services))
        return endpoint

    def admit(
        self, client: ec2.SecurityGroup, endpoints: Sequence[ec2.IConnectable], who: str
    ) -> None:
        """HTTPS from the client's security group to each endpoint: the ingress rule on the
        endpoint's group and the egress rule on the client's."""
        for endpoint in endpoints:
            endpoint.connections.allow_from(client, HTTPS, who)

    def allow_gateway(self, client: ec2.SecurityGroup, service: GatewayService) -> None:
        """HTTPS from the client to a gateway endpoint's service: to the region's
        AWS-managed prefix list of it when the configuration names it. Unnamed, any
        address: a template without account lookups cannot know the list's id, and the
        subnets still route nowhere but the endpoints."""
        prefix_list = (
            self._config.s3_prefix_list_id
            if service == "s3"
            else self._config.dynamodb_prefix_list_id
        )
        description = f"{GATEWAY_NAMES[service]} through its gateway endpoint"
        if prefix_list is not None:
            client.add_egress_rule(ec2.Peer.prefix_list(prefix_list), HTTPS, description)
            return
        client.add_egress_rule(ec2.Peer.any_ipv4(), HTTPS, description)
        Annotations.of(client).add_warning_v2(
            f"prtrace:{service}-prefix-list-unset",
            f"{service}_prefix_list_id is not set: this task's HTTPS egress is open to any "
            "address (its subnets route only to the VPC endpoints); set it to the region's "
            f"com.amazonaws.<region>.{service} prefix list",
        )

    def _dns_firewall(self, scope: Construct) -> None:
        prefix = self._config.prefix
        allowed = resolver.CfnFirewallDomainList(
            scope,
            "ResolvableNames",
            name=f"{prefix}-resolvable",
            domains=Lazy.list(self._names),
        )
        everything = resolver.CfnFirewallDomainList(
            scope, "EveryName", name=f"{prefix}-every-name", domains=["*"]
        )
        self.dns_firewall = resolver.CfnFirewallRuleGroup(
            scope,
            "DnsFirewall",
            name=f"{prefix}-tasks",
            firewall_rules=[
                resolver.CfnFirewallRuleGroup.FirewallRuleProperty(
                    action="ALLOW",
                    priority=ALLOW_RULE_PRIORITY,
                    firewall_domain_list_id=allowed.attr_id,
                    # AWS names CNAME to other AWS names (S3's to s3-r-w.<region>...):
                    # the first name decides.
                    firewall_domain_redirection_action="TRUST_REDIRECTION_DOMAIN",
                ),
                resolver.CfnFirewallRuleGroup.FirewallRuleProperty(
                    action="BLOCK",
                    priority=BLOCK_RULE_PRIORITY,
                    firewall_domain_list_id=everything.attr_id,
                    block_response="NXDOMAIN",
                ),
            ],
        )
        resolver.CfnFirewallRuleGroupAssociation(
            scope,
            "DnsFirewallAssociation",
            name=f"{prefix}-tasks",
            firewall_rule_group_id=self.dns_firewall.attr_id,
            vpc_id=self.vpc.vpc_id,
            priority=FIREWALL_ASSOCIATION_PRIORITY,
        )
