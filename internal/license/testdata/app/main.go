// Command app depends on a GPL-licensed library and one without a licence.
package main

import (
	"example.com/gpllib"
	"example.com/mystery"
)

func main() { println(gpllib.Name() + mystery.Name()) }
