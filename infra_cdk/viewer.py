"""The trace viewer: static files (infra_cdk/viewer_assets, no build step) in a private S3
bucket behind CloudFront, with the API behind the same distribution at /v1/*.

The viewer's files live beside the CDK code that deploys them: they are no Lambda or
container entry point (functions/), no domain code (layers/); the local cloud's gateway
serves the same directory under the same path (/viewer/) with the same security headers
(`security_headers`), so what the browser test checks is what CloudFront serves.

One origin for the page and the API: the page calls /v1/... on its own origin, so its
Content Security Policy needs no API host, and the bearer token (kept in the tab's session
storage) is never sent to another site. CloudFront forwards the Authorization header to
the API only with caching disabled (the AllViewerExceptHostHeader origin request policy),
and that behaviour allows GET and HEAD only: the viewer reads.

A stack of its own (`python -m infra_cdk.viewer_app`, `make deploy-viewer`), importing the
API endpoint and data bucket the prtrace stack exports: the prtrace stack (what the local
cloud deploys into moto) stays without CloudFront and a BucketDeployment custom resource,
which moto cannot run.
"""

from __future__ import annotations

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra_cdk.config import StackConfig
from infra_cdk.nag import acknowledge, object_wildcard
from infra_cdk.viewer_site import (
    VIEWER_ASSETS,
    VIEWER_PATH,
    api_export_name,
    bucket_export_name,
    security_headers,
)


class ViewerStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        removal = RemovalPolicy.DESTROY if config.destroy_data_on_delete else RemovalPolicy.RETAIN
        api_url = Fn.import_value(api_export_name(config.prefix))
        api_domain = Fn.select(2, Fn.split("/", api_url))  # https://<domain>/
        data_bucket = Fn.import_value(bucket_export_name(config.prefix))
        downloads = [
            f"https://{data_bucket}.s3.amazonaws.com",
            f"https://{data_bucket}.s3.{self.region}.amazonaws.com",
        ]

        # CloudFront standard logs are delivered with an ACL: this bucket needs object writer.
        self.logs = s3.Bucket(
            self,
            "Logs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=removal,
        )
        acknowledge(self.logs, "AwsSolutions-S1", "This is the log bucket; it does not log itself.")
        self.site = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="s3-site/",
            versioned=True,
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=False,
        )
        headers = security_headers(downloads)
        self.headers_policy = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="prtrace viewer: strict CSP and browser hardening",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=headers["content-security-policy"], override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.seconds(63072000),
                    include_subdomains=True,
                    override=True,
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(header=name, value=headers[name], override=True)
                    for name in ("cross-origin-opener-policy", "permissions-policy")
                ]
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="prtrace trace viewer",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.site),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                response_headers_policy=self.headers_policy,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
            ),
            additional_behaviors={
                "/v1/*": cloudfront.BehaviorOptions(
                    origin=origins.HttpOrigin(
                        api_domain, protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY
                    ),
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=(
                        cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER
                    ),
                    response_headers_policy=self.headers_policy,
                )
            },
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "Traces are per-tenant behind bearer tokens; no country is excluded.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "Static files and a read-only API behind its own authorizer and stage throttling; "
            "a WAF web ACL is left to operators who need one (it is billed per ACL).",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The default *.cloudfront.net certificate: CloudFront then allows TLSv1 for old "
            "viewers; a custom domain with an ACM certificate gets TLSv1.2_2021 (set above).",
        )
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Files",
            sources=[s3deploy.Source.asset(str(VIEWER_ASSETS))],
            destination_bucket=self.site,
            destination_key_prefix=VIEWER_PATH.strip("/"),
            distribution=self.distribution,
            distribution_paths=[f"{VIEWER_PATH}*"],
            prune=True,
            memory_limit=256,
        )
        self._acknowledge_deployment_handler()
        self.url = f"https://{self.distribution.distribution_domain_name}{VIEWER_PATH}"

    def _acknowledge_deployment_handler(self) -> None:
        """BucketDeployment's own handler (a CDK singleton Lambda at the stack's root): its
        policy is CDK's, scoped to the assets bucket and the site bucket."""
        handlers = [
            child
            for child in self.node.children
            if child.node.id.startswith("Custom::CDKBucketDeployment")
        ]
        iam5 = "CDK's BucketDeployment grants: read the CDK assets bucket's objects, write "
        "and prune the site bucket's, invalidate the distribution."
        findings = {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]": "CDK's BucketDeployment handler uses the basic "
            "Lambda execution role (its own logs only).",
            "AwsSolutions-L1": "CDK pins the BucketDeployment handler's runtime with its AWS CLI "
            "layer; it runs only during deployments.",
            object_wildcard(self.site, "*"): iam5,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
            "<AWS::AccountId>-<AWS::Region>/*]": iam5,
            "AwsSolutions-IAM5[Resource::*]": iam5,
            **{
                f"AwsSolutions-IAM5[Action::s3:{action}]": iam5
                for action in ("Abort*", "DeleteObject*", "GetBucket*", "GetObject*", "List*")
            },
        }
        for handler in handlers:
            for rule, reason in findings.items():
                acknowledge(handler, rule, reason)
