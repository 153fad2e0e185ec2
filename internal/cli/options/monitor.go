package options

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// MonitorAgent are the flags of `gantry monitor agent`.
type MonitorAgent struct {
	Remote   Remote
	Location string
	// Poll is how often the agent asks for its monitors; Flush how often
	// it sends results.
	Poll, Flush time.Duration
}

// AddFlags registers the flags.
func (o *MonitorAgent) AddFlags(fs *pflag.FlagSet) {
	o.Remote.AddFlags(fs)
	fs.StringVar(&o.Location, "location", "", "this agent's location, as the pipeline's monitors list it (a DNS label such as eu-west; not local)")
	fs.DurationVar(&o.Poll, "poll", 5*time.Second, "how often to ask the server which monitors to run")
	fs.DurationVar(&o.Flush, "flush", 2*time.Second, "how often to send the results (a failing one is sent at once)")
}

// Validate checks the flags.
func (o *MonitorAgent) Validate() error {
	if err := o.Remote.Validate(); err != nil {
		return err
	}
	switch {
	case !o.Remote.Enabled():
		return errors.New("--server (or GANTRY_SERVER) is required: the agent reports to a gantry server")
	case o.Location == "":
		return errors.New("--location is required: the location the pipeline's monitors list for this agent")
	case o.Poll < 100*time.Millisecond || o.Flush < 100*time.Millisecond:
		return errors.New("--poll and --flush must be at least 100ms")
	}
	return nil
}

// AgentURLs is gantry serve's --agent-url: the URL probe agents on other
// machines check for an environment.
type AgentURLs struct {
	Values []string
}

// AddFlags registers --agent-url.
func (o *AgentURLs) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.Values, "agent-url", nil, "ENV=URL: the URL probe agents (gantry monitor agent) check for environment ENV, the address of its active proxy from outside (default its loopback URL); repeatable")
}

var agentEnvName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Map checks the values and returns them by environment.
func (o *AgentURLs) Map() (map[string]string, error) {
	out := map[string]string{}
	for _, v := range o.Values {
		env, raw, ok := strings.Cut(v, "=")
		if !ok || !agentEnvName.MatchString(env) {
			return nil, fmt.Errorf("--agent-url %q: want ENV=URL, ENV an environment name", v)
		}
		if _, dup := out[env]; dup {
			return nil, fmt.Errorf("--agent-url: environment %s is given twice", env)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("--agent-url %s: %q is not an http(s)://host[:port][/path] URL without user, query or fragment", env, raw)
		}
		out[env] = strings.TrimSuffix(raw, "/")
	}
	return out, nil
}
