terraform {
  required_version = ">= 1.5.0"
}

variable "environment" {
  description = "Name of the environment."
  type        = string
  default     = "staging"
}

output "queue_name" {
  description = "Name of the ledger queue."
  value       = "ledger-${var.environment}"
}
