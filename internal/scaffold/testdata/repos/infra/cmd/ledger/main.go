// Command ledger prints the balance of the amounts it is given.
package main

import (
	"fmt"
	"os"

	"example.com/ledger/internal/ledger"
)

func main() {
	fmt.Println(ledger.Balance(os.Args[1:]))
}
