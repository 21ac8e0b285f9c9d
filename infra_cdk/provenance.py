"""The trace-manifest signing key: a KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY) whose
private half never leaves KMS. Only the Record step may sign with it; the API may read its
public half (GET /v1/keys, JWKS), and nothing else may use it.

Rotation: KMS does not rotate asymmetric keys. To rotate, deploy with the current key's ARN
in `previous_signing_key_arns` and a new key replaces it (change this construct's id, e.g.
ManifestSigningKey2): new manifests are signed by the new key, and the API keeps publishing
the old ones, so every bundle ever signed still verifies. Keys are retained on stack
deletion: a deleted key would make its signatures unverifiable against a live key set.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra_cdk.config import StackConfig


class SigningKeyConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "ManifestSigningKey",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            description=f"{config.prefix}: signs trace manifests (DSSE, ES256)",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.previous_arns = list(config.previous_signing_key_arns)

    @property
    def published_arns(self) -> list[str]:
        """The keys GET /v1/keys lists: the current one first."""
        return [self.key.key_arn, *self.previous_arns]

    def grant_sign(self, role: iam.IRole) -> None:
        """Sign, and read the public key to name the signature's key id."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Sign", "kms:GetPublicKey"], resources=[self.key.key_arn]
            )
        )

    def grant_publish(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:GetPublicKey"], resources=self.published_arns)
        )

    def outputs(self, api_url: str) -> None:
        CfnOutput(
            self,
            "SigningKeyArn",
            key="ManifestSigningKeyArn",
            value=self.key.key_arn,
            description="KMS key (ECC_NIST_P256) that signs trace manifests",
        )
        CfnOutput(
            self,
            "PublicKeysUrl",
            key="ManifestPublicKeysUrl",
            value=f"{api_url}/v1/keys",
            description="JWKS of the manifest signing keys, for prtrace verify --key",
        )
