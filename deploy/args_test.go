package deploy

import (
	"context"
	"testing"

	"github.com/gantry-ci/gantry/internal/cli"
	"github.com/gantry-ci/gantry/internal/serve"
)

// Every argument the chart gives the container is one gantry serve
// knows, with a value its flags parse, and the listener is one serve
// accepts with TLS.
func TestServeAcceptsTheArguments(t *testing.T) {
	ctx := context.Background()
	for _, tc := range combinations {
		t.Run(tc.name, func(t *testing.T) {
			manifest, err := render(ctx, t, values(t, tc.values))
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			args := deployment(t, decode(t, manifest)).Spec.Template.Spec.Containers[0].Args
			cmd, rest, err := cli.New().Find(args)
			if err != nil {
				t.Fatalf("gantry %q: %v", args, err)
			}
			if cmd.Name() != "serve" {
				t.Fatalf("gantry %q runs %q, want serve", args, cmd.CommandPath())
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Fatalf("gantry %q: %v", args, err)
			}
			if extra := cmd.Flags().Args(); len(extra) != 0 {
				t.Errorf("gantry %q: arguments %q that are no flag's", args, extra)
			}
			listen, _ := flag(args, "listen")
			cert, _ := flag(args, "tls-cert")
			if err := serve.CheckListen(listen, cert != ""); err != nil {
				t.Errorf("gantry serve would refuse its listener: %v", err)
			}
		})
	}
}
