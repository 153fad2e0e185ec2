// Command hello is an image-build fixture.
package main

import (
	"fmt"
	"net/http"
	"time"
)

func main() {
	_, err := time.LoadLocation("Europe/Berlin")
	fmt.Println("hello", http.StatusOK, err)
}
