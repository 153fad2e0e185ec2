terraform {
  required_version = ">= 1.6"
}

variable "unused" {
  type = string
}

variable "name" {}

output "name" {
  value = "${var.name}"
}
