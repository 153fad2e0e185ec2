// Command orders prints the order ID of each item it is given.
package main

import (
	"fmt"
	"os"

	"example.com/orders/internal/orders"
)

func main() {
	for _, a := range os.Args[1:] {
		fmt.Println(orders.ID(a))
	}
}
