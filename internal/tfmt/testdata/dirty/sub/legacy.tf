variable "a" {
  type = "string"
}
variable "b" {
  type = "list"
}
variable "c" {
  type = "map"
}
resource "x" "y" {
  v = "${var.a}-x"
  w = <<EOT
hello
EOT
  z = "${
    var.a
  }"
}
