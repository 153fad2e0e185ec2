resource "x" "y" {
  a = 
}
