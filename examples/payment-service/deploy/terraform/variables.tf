variable "region" {
  description = "AWS region of the cluster, registry and state bucket."
  type        = string
  default     = "us-east-1"
}

variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string
  default     = "examplepay-prod"
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the EKS control plane."
  type        = string
  default     = "1.31"
}

variable "subnet_ids" {
  description = "Private subnets (at least two availability zones) for the control plane and nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "ci_role_arn" {
  description = "IAM role of the CI pipeline: the only principal allowed to sign with the cosign key and push images."
  type        = string
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "node_scaling" {
  description = "Size of the managed node group."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = {
    min     = 3
    desired = 3
    max     = 9
  }
}
