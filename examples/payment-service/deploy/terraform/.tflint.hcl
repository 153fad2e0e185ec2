# tflint configuration. The bundled terraform ruleset needs no download;
# the AWS ruleset (instance types, invalid ARNs, ...) is enabled where
# plugins can be fetched: uncomment and run `tflint --init`.
config {
  call_module_type = "local"
  force            = false
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

# plugin "aws" {
#   enabled = true
#   version = "0.38.0"
#   source  = "github.com/terraform-linters/tflint-ruleset-aws"
# }

rule "terraform_naming_convention" {
  enabled = true
}

rule "terraform_documented_variables" {
  enabled = true
}

rule "terraform_documented_outputs" {
  enabled = true
}

rule "terraform_standard_module_structure" {
  enabled = true
}
