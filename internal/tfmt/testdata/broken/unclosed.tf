variable "v" {
  type = string
