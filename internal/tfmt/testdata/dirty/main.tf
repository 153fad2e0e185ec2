resource "aws_s3_bucket" "b" {
  bucket = "x"
  acl="private"
  tags = {
    a = 1
    long_name = 2
  }
}
