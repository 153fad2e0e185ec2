// Command vulnapp decodes UTF-16 with golang.org/x/text v0.3.0, a version
// with known vulnerabilities, so that gantry's scanner has a real binary to
// find them in.
package main

import (
	"fmt"
	"os"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

func main() {
	dec := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder()
	s, _, err := transform.String(dec, "\xff\xfeh\x00i\x00")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s)
}
