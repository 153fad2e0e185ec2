output "ecr_repository_url" {
  description = "Registry path images are pushed to."
  value       = aws_ecr_repository.payment_service.repository_url
}

output "cosign_key_alias" {
  description = "KMS alias for cosign: awskms:///alias/examplepay-cosign."
  value       = aws_kms_alias.cosign.name
}

output "cosign_key_arn" {
  description = "ARN of the cosign signing key."
  value       = aws_kms_key.cosign.arn
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = aws_eks_cluster.main.name
}

output "cluster_endpoint" {
  description = "EKS API server endpoint."
  value       = aws_eks_cluster.main.endpoint
}

output "state_bucket" {
  description = "Versioned bucket holding eks/terraform.tfstate."
  value       = aws_s3_bucket.tfstate.id
}
