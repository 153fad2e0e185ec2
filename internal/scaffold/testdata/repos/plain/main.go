// Command greeter prints a greeting.
package main

import (
	"fmt"
	"os"

	"example.com/greeter/internal/greet"
)

func main() {
	fmt.Println(greet.Hello(os.Args[1:]...))
}
