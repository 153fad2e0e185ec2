// Command vulnapp has planted crypto and TLS issues.
package main

import (
	"crypto/md5" // gantry:ignore G501
	"crypto/tls"
	"fmt"
	"net/http"
)

func main() {
	sum := md5.Sum([]byte("payload"))
	fmt.Printf("%x\n", sum)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	_ = c
}
