terraform {
  required_version = ">= 1.6"
}

variable "region" {
  type    = string
  default = "us-east-1"
}

resource "aws_s3_bucket" "state" {
  bucket = "examplepay-${var.region}"
  tags = {
    team        = "payments"
    cost_center = "42"
  }
}
