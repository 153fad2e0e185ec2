package local

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// fakeRootFS writes a small image tree: executables, passwd and group.
func fakeRootFS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"etc/passwd":         "root:x:0:0::/root:/bin/false\napp:x:1000:1001::/home/app:/bin/false\nnonroot:x:65532:65532::/home/nonroot:/bin/false\n",
		"etc/group":          "root:x:0:\nstaff:x:50:\napp:x:1001:\n",
		"app/server":         "#!/bin/false\n",
		"usr/bin/helper":     "#!/bin/false\n",
		"usr/share/notexec":  "data",
		"home/nonroot/.keep": "",
	}
	for p, body := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Dir(p) == "app" || filepath.Dir(p) == "usr/bin" {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	// An absolute link resolves inside the image.
	if err := os.Symlink("/usr/bin/helper", filepath.Join(dir, "app/link")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestResolve(t *testing.T) {
	rootfs := fakeRootFS(t)
	img := func(c v1.Config) *image { return &image{RootFS: rootfs, Config: c} }
	base := v1.Config{Entrypoint: []string{"/app/server"}, Cmd: []string{"--serve"}, Env: []string{"PATH=/usr/bin", "A=image", "B=image"},
		WorkingDir: "/home/nonroot", User: "65532:65532"}
	tests := []struct {
		name     string
		cfg      v1.Config
		w        runtime.Workload
		extra    []string
		wantArgs []string
		wantEnv  []string
		wantCwd  string
		wantUID  uint32
		wantGID  uint32
	}{
		{name: "image defaults", cfg: base, wantArgs: []string{"/app/server", "--serve"},
			wantEnv: []string{"PATH=/usr/bin", "A=image", "B=image"}, wantCwd: "/home/nonroot", wantUID: 65532, wantGID: 65532},
		{name: "args replace cmd", cfg: base, w: runtime.Workload{Args: []string{"--port", "1"}},
			wantArgs: []string{"/app/server", "--port", "1"}, wantEnv: base.Env, wantCwd: "/home/nonroot", wantUID: 65532, wantGID: 65532},
		{name: "command drops entrypoint and cmd", cfg: base, w: runtime.Workload{Command: []string{"helper"}},
			wantArgs: []string{"helper"}, wantEnv: base.Env, wantCwd: "/home/nonroot", wantUID: 65532, wantGID: 65532},
		{name: "env order image, workload, spec", cfg: base, w: runtime.Workload{Env: []string{"B=workload", "C=workload"}}, extra: []string{"C=spec"},
			wantArgs: []string{"/app/server", "--serve"}, wantEnv: []string{"PATH=/usr/bin", "A=image", "B=workload", "C=spec"},
			wantCwd: "/home/nonroot", wantUID: 65532, wantGID: 65532},
		{name: "user by name, primary group", cfg: v1.Config{Entrypoint: []string{"/app/link"}, User: "app"},
			wantArgs: []string{"/app/link"}, wantCwd: "/", wantUID: 1000, wantGID: 1001},
		{name: "user and group by name", cfg: v1.Config{Entrypoint: []string{"/app/server"}, User: "app:staff"},
			wantArgs: []string{"/app/server"}, wantCwd: "/", wantUID: 1000, wantGID: 50},
		{name: "runAsUser over the image", cfg: base, w: runtime.Workload{WorkingDir: "/tmp",
			Security: runtime.Security{RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(7))}},
			wantArgs: []string{"/app/server", "--serve"}, wantEnv: base.Env, wantCwd: "/tmp", wantUID: 1000, wantGID: 7},
		{name: "no user is root", cfg: v1.Config{Entrypoint: []string{"/app/server"}},
			wantArgs: []string{"/app/server"}, wantCwd: "/", wantUID: 0, wantGID: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolve("i", tt.w, img(tt.cfg), tt.extra)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Args, tt.wantArgs) {
				t.Errorf("args = %q, want %q", got.Args, tt.wantArgs)
			}
			if !slices.Equal(got.Env, tt.wantEnv) {
				t.Errorf("env = %q, want %q", got.Env, tt.wantEnv)
			}
			if got.Cwd != tt.wantCwd || got.UID != tt.wantUID || got.GID != tt.wantGID {
				t.Errorf("cwd, uid, gid = %s, %d, %d; want %s, %d, %d", got.Cwd, got.UID, got.GID, tt.wantCwd, tt.wantUID, tt.wantGID)
			}
		})
	}
}

func TestResolveRefuses(t *testing.T) {
	rootfs := fakeRootFS(t)
	tests := []struct {
		name  string
		cfg   v1.Config
		w     runtime.Workload
		want  error
		field string
	}{
		{"no command at all", v1.Config{}, runtime.Workload{}, ErrEntrypointMissing, "command"},
		{"not executable", v1.Config{Entrypoint: []string{"/usr/share/notexec"}}, runtime.Workload{}, ErrEntrypointMissing, "command"},
		{"unknown user name", v1.Config{Entrypoint: []string{"/app/server"}, User: "ghost"}, runtime.Workload{}, ErrUnknownUser, "securityContext.runAsUser"},
		{"non-root asked, image root", v1.Config{Entrypoint: []string{"/app/server"}, User: "root"},
			runtime.Workload{Security: runtime.Security{RunAsNonRoot: true}}, ErrRunAsNonRoot, "securityContext.runAsNonRoot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve("web-1", tt.w, &image{RootFS: rootfs, Config: tt.cfg}, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			var se *SpecError
			if !errors.As(err, &se) || se.Instance != "web-1" || se.Field != tt.field {
				t.Errorf("error = %v, want instance web-1, field %s", err, tt.field)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	var got []string
	d := nextBackoff(0)
	for range 11 {
		got = append(got, d.String())
		d = nextBackoff(d)
	}
	want := []string{"1s", "2s", "4s", "8s", "16s", "32s", "1m4s", "2m8s", "4m16s", "5m0s", "5m0s"}
	if !slices.Equal(got, want) {
		t.Errorf("backoff = %v, want %v", got, want)
	}
}
