// Command proxyproc serves gantry's environment proxy (internal/proxy)
// alone in its own process, in front of the given backends, so that its
// cost can be measured and profiled apart from gantry serve:
//
//	proxyproc -listen 127.0.0.1:18081 -backends 127.0.0.1:A,127.0.0.1:B [-cpuprofile F]
//
// It serves until interrupted, then writes the profile.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/gantry-ci/gantry/internal/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	backends := flag.String("backends", "", "backend host:port list, comma-separated")
	profile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *backends == "" {
		fmt.Fprintln(os.Stderr, "usage: proxyproc -backends HOST:PORT[,...] [-listen ADDR] [-cpuprofile F]")
		os.Exit(2)
	}
	if err := run(*listen, strings.Split(*backends, ","), *profile); err != nil {
		fmt.Fprintln(os.Stderr, "proxyproc:", err)
		os.Exit(1)
	}
}

func run(listen string, addrs []string, profile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := proxy.New("bench", nil)
	var bs []proxy.Backend
	for i, a := range addrs {
		bs = append(bs, proxy.Backend{ID: fmt.Sprint(i), Addr: a})
	}
	p.Switch(bs)
	if err := p.Listen(listen); err != nil {
		return err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println(p.Addr())
	<-ctx.Done()
	return p.Close(context.Background())
}
