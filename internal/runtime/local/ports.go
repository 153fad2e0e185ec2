package local

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// portMap is a declared container port and the host port that stands for
// it (instances share the host network).
type portMap struct {
	Name      string
	Container int
	Host      int
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the instance binds it; the supervisor notices (the
// instance exits and the port is taken) and picks new ones.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// portTaken reports whether something listens on the port now.
func portTaken(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return true
	}
	ln.Close()
	return false
}

// allocPorts gives each declared port a host port; a workload without
// ports gets one unnamed port, so that the port variable is always set.
func allocPorts(ports []runtime.Port) ([]portMap, error) {
	if len(ports) == 0 {
		ports = []runtime.Port{{}}
	}
	out := make([]portMap, len(ports))
	for i, p := range ports {
		h, err := freePort()
		if err != nil {
			return nil, err
		}
		out[i] = portMap{Name: p.Name, Container: p.ContainerPort, Host: h}
	}
	return out, nil
}

// portEnv is the environment that tells the instance its ports: the
// workload's PortEnv (PORT by default) for the first, and PORT_NAME (the
// port's name upper-cased, "-" as "_") for every named one.
func portEnv(w runtime.Workload, ports []portMap) []string {
	name := w.PortEnv
	if name == "" {
		name = "PORT"
	}
	env := []string{name + "=" + strconv.Itoa(ports[0].Host)}
	for _, p := range ports {
		if p.Name != "" {
			env = append(env, "PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))+"="+strconv.Itoa(p.Host))
		}
	}
	return env
}

// hostPort maps a probe's port (a declared name or number) to the host
// port. An empty port or a workload without declared ports means the first.
func hostPort(ports []portMap, declared bool, port string) (int, error) {
	if port == "" || !declared {
		return ports[0].Host, nil
	}
	n, numErr := strconv.Atoi(port)
	for _, p := range ports {
		if (numErr == nil && p.Container == n) || (numErr != nil && p.Name == port) {
			return p.Host, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrProbePort, port)
}
