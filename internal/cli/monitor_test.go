package cli

import (
	"strings"
	"testing"
)

func TestMonitorAgentUsage(t *testing.T) {
	t.Setenv("GANTRY_SERVER", "")
	t.Setenv("GANTRY_TOKEN", "tok")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no server", []string{"monitor", "agent", "--location", "eu-west"}, "--server (or GANTRY_SERVER) is required"},
		{"no location", []string{"monitor", "agent", "--server", "http://127.0.0.1:1"}, "--location is required"},
		{"local", []string{"monitor", "agent", "--server", "http://127.0.0.1:1", "--location", "local"}, "--location local is the gantry server itself"},
		{"bad location", []string{"monitor", "agent", "--server", "http://127.0.0.1:1", "--location", "EU West"}, `invalid location name "EU West"`},
		{"plain http off loopback", []string{"monitor", "agent", "--server", "http://ci.example.com", "--location", "eu-west"}, "must be https://"},
		{"poll too short", []string{"monitor", "agent", "--server", "http://127.0.0.1:1", "--location", "eu-west", "--poll", "1ms"}, "--poll and --flush must be at least 100ms"},
		{"argument", []string{"monitor", "agent", "extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCLI(t, "", tt.args...)
			if code != ExitUsage || !strings.Contains(out, tt.want) {
				t.Errorf("gantry %s: exit %d, output:\n%s\nwant exit 2 saying %q", strings.Join(tt.args, " "), code, out, tt.want)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		t.Setenv("GANTRY_TOKEN", "")
		out, code := runCLI(t, "", "monitor", "agent", "--server", "http://127.0.0.1:1", "--location", "eu-west")
		if code != ExitUsage || !strings.Contains(out, "no API token") {
			t.Errorf("exit %d, output:\n%s\nwant exit 2 saying no API token", code, out)
		}
	})
}

func TestServeAgentURLUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"not ENV=URL", []string{"serve", "--listen", "127.0.0.1:0", "--agent-url", "https://x"}, "want ENV=URL"},
		{"not a URL", []string{"serve", "--listen", "127.0.0.1:0", "--agent-url", "prod=ftp://x"}, "is not an http(s)://host"},
		{"twice", []string{"serve", "--listen", "127.0.0.1:0", "--agent-url", "prod=https://a", "--agent-url", "prod=https://b"}, "prod is given twice"},
		{"without listen", []string{"serve", "--agent-url", "prod=https://pay.example.com"}, "--agent-url needs --listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCLI(t, "", tt.args...)
			if code != ExitUsage || !strings.Contains(out, tt.want) {
				t.Errorf("gantry %s: exit %d, output:\n%s\nwant exit 2 saying %q", strings.Join(tt.args, " "), code, out, tt.want)
			}
		})
	}
}
