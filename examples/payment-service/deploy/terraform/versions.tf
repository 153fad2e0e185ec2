terraform {
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }

  # State lives in the versioned bucket this configuration also manages
  # (bootstrapped once with a local backend, then migrated). Rolling back
  # state means restoring an older object version of eks/terraform.tfstate.
  backend "s3" {
    bucket       = "examplepay-prod-tfstate-us-east-1"
    key          = "eks/terraform.tfstate"
    region       = "us-east-1"
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "examplepay"
      Service   = "payment-service"
      ManagedBy = "terraform"
    }
  }
}
