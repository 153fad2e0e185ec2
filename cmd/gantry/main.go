// Command gantry runs a supply-chain-secure CI/CD pipeline.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gantry-ci/gantry/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.New().ExecuteContext(ctx)
	stop()
	var quiet *cli.ExitError
	if err != nil && !(errors.As(err, &quiet) && quiet.Err == nil) {
		fmt.Fprintln(os.Stderr, "gantry:", err)
	}
	os.Exit(cli.Code(err))
}
