// Command shop prints the total of the prices it is given, in cents.
package main

import (
	"fmt"
	"os"

	"example.com/shop/internal/price"
)

func main() {
	fmt.Println(price.Total(os.Args[1:]))
}
