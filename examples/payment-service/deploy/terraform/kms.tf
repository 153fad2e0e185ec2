data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

# Asymmetric key that cosign signs image digests with
# (cosign sign --key awskms:///alias/examplepay-cosign). The private key
# never leaves KMS; only the CI role may use it to sign.
resource "aws_kms_key" "cosign" {
  description              = "cosign image-signing key for examplepay"
  key_usage                = "SIGN_VERIFY"
  customer_master_key_spec = "ECC_NIST_P256"
  deletion_window_in_days  = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "KeyAdministration"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action = [
          "kms:Create*",
          "kms:Describe*",
          "kms:Enable*",
          "kms:List*",
          "kms:Put*",
          "kms:Update*",
          "kms:Revoke*",
          "kms:Disable*",
          "kms:Get*",
          "kms:Delete*",
          "kms:TagResource",
          "kms:UntagResource",
          "kms:ScheduleKeyDeletion",
          "kms:CancelKeyDeletion",
        ]
        Resource = "*"
      },
      {
        Sid       = "CISign"
        Effect    = "Allow"
        Principal = { AWS = var.ci_role_arn }
        Action = [
          "kms:Sign",
          "kms:GetPublicKey",
          "kms:DescribeKey",
        ]
        Resource = "*"
      },
      {
        Sid       = "VerifyForAccount"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action = [
          "kms:Verify",
          "kms:GetPublicKey",
        ]
        Resource = "*"
      },
      {
        Sid       = "DenySignExceptCI"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "kms:Sign"
        Resource  = "*"
        Condition = {
          ArnNotEquals = { "aws:PrincipalArn" = var.ci_role_arn }
        }
      }
    ]
  })
}

resource "aws_kms_alias" "cosign" {
  name          = "alias/examplepay-cosign"
  target_key_id = aws_kms_key.cosign.key_id
}

# Envelope encryption of Kubernetes Secrets in etcd.
resource "aws_kms_key" "eks_secrets" {
  description             = "EKS secrets encryption for ${var.cluster_name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}
