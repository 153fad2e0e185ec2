// Package trivy runs the `trivy` command line scanner on a target and
// reads its JSON report into gantry's vulnerability findings (package
// vuln), so that Trivy's results pass through gantry's own gate.
//
// Trivy is given exactly one image per run, by digest: an image in an OCI
// layout is handed over as a one-image layout (Trivy would otherwise scan
// the layout's first image), an image index is resolved to the image of
// each wanted platform, and a registry reference is pinned to the digest.
// Unless the caller allows it, Trivy must not download anything: its
// database updates are skipped and it scans offline.
package trivy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/vuln"
)

// InstallHint says how to get Trivy.
const InstallHint = "install it from https://trivy.dev/latest/getting-started/installation/ " +
	"(Debian/Ubuntu: Aqua's apt repository, `apt-get install trivy`; macOS: `brew install trivy`), " +
	"or use scanner: gantry, or feed an existing report with trivy_report"

// ErrNotInstalled is returned (wrapped) when no trivy executable is found.
var ErrNotInstalled = errors.New("trivy is not installed")

// ErrNoDB is returned (wrapped) when Trivy has no vulnerability database
// and may not download one.
var ErrNoDB = errors.New("trivy has no vulnerability database")

// Options configure a run.
type Options struct {
	// Bin is the trivy executable; "" looks it up on the PATH of Env.
	Bin string
	// Target is LAYOUT@DIGEST, an image archive (.tar), a registry
	// reference, a file (scanned as a root filesystem: a Go binary), or a
	// directory or go.mod (scanned as a source tree).
	Target string
	// Platform selects the images of an index: os/arch[/variant] or "all"
	// (default linux/amd64).
	Platform string
	// Insecure allows plain HTTP to the registry (the embedded registry).
	Insecure bool
	// CacheDir is Trivy's cache directory holding its database ("" for
	// Trivy's default: $TRIVY_CACHE_DIR or ~/.cache/trivy).
	CacheDir string
	// AllowDownload lets Trivy update its databases and query the network
	// while scanning. Off: --skip-db-update --skip-java-db-update
	// --offline-scan.
	AllowDownload bool
	// Env is the environment of the trivy process (default os.Environ()).
	Env []string
	// TempDir holds the report files and one-image layouts (default
	// os.TempDir()).
	TempDir string
	// Log receives trivy's standard error (warnings, errors).
	Log io.Writer
}

// Scan is the outcome of a run: one report per image or tree scanned.
type Scan struct {
	// Target is the target as given; Digest the image or index digest
	// ("" for files and directories).
	Target string
	Digest string
	Parts  []Part
	// DBUpdatedAt is when Trivy's vulnerability database was built, from
	// its cache's db/metadata.json (zero when unknown).
	DBUpdatedAt time.Time
}

// dbMetadata is the part of Trivy's CACHE/db/metadata.json gantry reads.
type dbMetadata struct {
	UpdatedAt time.Time `json:"UpdatedAt"`
}

// cacheDir is the cache Trivy uses: o.CacheDir, $TRIVY_CACHE_DIR of the
// environment, else ~/.cache/trivy ("" when unknown).
func (o Options) cacheDir() string {
	if o.CacheDir != "" {
		return o.CacheDir
	}
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	home := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "TRIVY_CACHE_DIR="); ok && v != "" {
			return v
		}
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".cache", "trivy")
}

// dbUpdatedAt reads when the cached database was built; zero if unknown.
func dbUpdatedAt(cache string) time.Time {
	if cache == "" {
		return time.Time{}
	}
	data, err := os.ReadFile(filepath.Join(cache, "db", "metadata.json"))
	if err != nil {
		return time.Time{}
	}
	var m dbMetadata
	if json.Unmarshal(data, &m) != nil {
		return time.Time{}
	}
	return m.UpdatedAt
}

// Part is one trivy run.
type Part struct {
	// Platform of the image scanned ("" when not an index member).
	Platform string
	// Args are trivy's arguments.
	Args   []string
	Report *vuln.TrivyReport
	// Raw is the JSON report as trivy wrote it.
	Raw []byte
}

// Findings returns the findings of every part, platform-tagged, sorted.
func (s *Scan) Findings() []vuln.Finding {
	var out []vuln.Finding
	for _, p := range s.Parts {
		out = append(out, p.Report.Findings(p.Platform)...)
	}
	vuln.SortFindings(out)
	return out
}

// Reports returns the parts' Trivy reports.
func (s *Scan) Reports() []*vuln.TrivyReport {
	out := make([]*vuln.TrivyReport, len(s.Parts))
	for i, p := range s.Parts {
		out[i] = p.Report
	}
	return out
}

// job is one trivy invocation: its subcommand and target arguments.
type job struct {
	platform string
	args     []string
}

// Run scans o.Target with trivy.
func Run(ctx context.Context, o Options) (*Scan, error) {
	bin, err := o.bin()
	if err != nil {
		return nil, err
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	tmp, err := os.MkdirTemp(o.TempDir, "trivy-")
	if err != nil {
		return nil, fmt.Errorf("trivy: make a scratch directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	s := &Scan{Target: o.Target}
	jobs, err := o.plan(ctx, tmp, s)
	if err != nil {
		return nil, err
	}
	for i, j := range jobs {
		out := filepath.Join(tmp, fmt.Sprintf("report-%d.json", i))
		args := append(append([]string{}, j.args[0], "--format", "json", "--quiet", "--scanners", "vuln", "--output", out), o.flags()...)
		args = append(args, j.args[1:]...)
		raw, err := o.exec(ctx, bin, args, out)
		if err != nil {
			return nil, err
		}
		rep, err := vuln.ParseTrivy(fmt.Sprintf("trivy output for %s", o.Target), raw)
		if err != nil {
			return nil, err
		}
		s.Parts = append(s.Parts, Part{Platform: j.platform, Args: args, Report: rep, Raw: raw})
	}
	// Read after the runs: with downloads allowed, trivy may have updated it.
	s.DBUpdatedAt = dbUpdatedAt(o.cacheDir())
	return s, nil
}

// flags are the options common to every run.
func (o Options) flags() []string {
	var f []string
	if o.CacheDir != "" {
		f = append(f, "--cache-dir", o.CacheDir)
	}
	if !o.AllowDownload {
		f = append(f, "--skip-db-update", "--skip-java-db-update", "--offline-scan")
	}
	return f
}

// bin finds the trivy executable on the PATH of o.Env.
func (o Options) bin() (string, error) {
	if o.Bin != "" {
		return o.Bin, nil
	}
	path, ok := "", false
	for _, kv := range o.Env {
		if v, found := strings.CutPrefix(kv, "PATH="); found {
			path, ok = v, true
		}
	}
	if !ok {
		if p, err := exec.LookPath("trivy"); err == nil {
			return p, nil
		}
		return "", fmt.Errorf("%w (not on PATH): %s", ErrNotInstalled, InstallHint)
	}
	if p := LookPath("trivy", path); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%w (not on PATH): %s", ErrNotInstalled, InstallHint)
}

// LookPath returns the first executable file named bin in the directories
// of path (a PATH value), or "".
func LookPath(bin, path string) string {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Available reports whether trivy is on the PATH of env (the process's
// PATH when env has none).
func Available(env []string) bool {
	_, err := Options{Env: env}.bin()
	return err == nil
}

// plan decides the trivy invocations for the target.
func (o Options) plan(ctx context.Context, tmp string, s *Scan) ([]job, error) {
	t := o.Target
	if dir, dig, ok := strings.Cut(t, "@"); ok && isLayout(dir) {
		return o.planLayout(dir, dig, tmp, s)
	}
	if fi, err := os.Stat(t); err == nil {
		switch {
		case fi.IsDir() && isLayout(t):
			return nil, fmt.Errorf("trivy: %s is an OCI layout: name the image by digest (%s@sha256:<hex>)", t, t)
		case fi.IsDir(), filepath.Base(t) == "go.mod":
			// A source tree: Trivy reads go.mod and other lock files
			// only in fs mode.
			return []job{{args: []string{"fs", t}}}, nil
		case strings.HasSuffix(t, ".tar") || strings.HasSuffix(t, ".tar.gz") || strings.HasSuffix(t, ".tgz"):
			// docker save or OCI archive; trivy picks the image.
			return []job{{args: []string{"image", "--input", t}}}, nil
		default:
			return []job{{args: []string{"rootfs", t}}}, nil
		}
	}
	if strings.ContainsAny(t, ":@/") {
		return o.planRemote(ctx, s)
	}
	return nil, fmt.Errorf("trivy: no such target %q (want LAYOUT@DIGEST, an image reference, a file or a directory)", t)
}

func isLayout(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "index.json"))
	return err == nil
}

func (o Options) want() string {
	if o.Platform == "" {
		return "linux/amd64"
	}
	return o.Platform
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pick selects the image manifests of an index for the wanted platform.
func (o Options) pick(m *v1.IndexManifest, what string) ([]v1.Descriptor, error) {
	var out []v1.Descriptor
	for _, d := range m.Manifests {
		if !d.MediaType.IsImage() || d.Platform == nil {
			continue // attestations, nested indexes
		}
		if o.want() == "all" || platformString(d.Platform) == o.want() {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trivy: %s has no image for platform %s", what, o.want())
	}
	return out, nil
}

// planLayout hands trivy one-image layouts: a fresh index.json naming
// only the wanted image, next to a link to the layout's blobs.
func (o Options) planLayout(dir, dig, tmp string, s *Scan) ([]job, error) {
	h, err := v1.NewHash(dig)
	if err != nil {
		return nil, fmt.Errorf("trivy: %s@%s: bad digest: %w", dir, dig, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("trivy: open OCI layout %s: %w", dir, err)
	}
	raw, err := p.Bytes(h)
	if err != nil {
		return nil, fmt.Errorf("trivy: read %s from OCI layout %s: %w", dig, dir, err)
	}
	s.Digest = h.String()
	var head struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("trivy: read %s from OCI layout %s: %w", dig, dir, err)
	}
	descs := []v1.Descriptor{{MediaType: head.MediaType, Digest: h, Size: int64(len(raw))}}
	if head.MediaType.IsIndex() {
		m, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("trivy: read index %s in OCI layout %s: %w", dig, dir, err)
		}
		if descs, err = o.pick(m, dir+"@"+dig); err != nil {
			return nil, err
		}
	} else if head.MediaType == "" {
		descs[0].MediaType = types.OCIManifestSchema1
	}
	abs, err := filepath.Abs(filepath.Join(dir, "blobs"))
	if err != nil {
		return nil, fmt.Errorf("trivy: %w", err)
	}
	var jobs []job
	for i, d := range descs {
		one := filepath.Join(tmp, fmt.Sprintf("layout-%d", i))
		if err := writeOneImageLayout(one, abs, d); err != nil {
			return nil, fmt.Errorf("trivy: prepare image %s of %s: %w", d.Digest, dir, err)
		}
		jobs = append(jobs, job{platform: platformString(d.Platform), args: []string{"image", "--input", one}})
	}
	return jobs, nil
}

func writeOneImageLayout(dir, blobs string, d v1.Descriptor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(blobs, filepath.Join(dir, "blobs")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{d}}
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), data, 0o644)
}

// planRemote resolves a registry reference to image digests.
func (o Options) planRemote(ctx context.Context, s *Scan) ([]job, error) {
	var nopts []name.Option
	if o.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(o.Target, nopts...)
	if err != nil {
		return nil, fmt.Errorf("trivy: parse image reference %q: %w", o.Target, err)
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("trivy: get %s: %w", o.Target, err)
	}
	s.Digest = desc.Digest.String()
	descs := []v1.Descriptor{desc.Descriptor}
	if desc.MediaType.IsIndex() {
		m, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, fmt.Errorf("trivy: read index %s: %w", o.Target, err)
		}
		if descs, err = o.pick(m, o.Target); err != nil {
			return nil, err
		}
	}
	var jobs []job
	for _, d := range descs {
		args := []string{"image", "--image-src", "remote"}
		if o.Insecure {
			args = append(args, "--insecure")
		}
		args = append(args, ref.Context().Digest(d.Digest.String()).String())
		jobs = append(jobs, job{platform: platformString(d.Platform), args: args})
	}
	return jobs, nil
}

// stderrTail keeps the last lines of trivy's standard error for errors.
type stderrTail struct {
	buf bytes.Buffer
}

func (t *stderrTail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if t.buf.Len() > 64<<10 {
		b := t.buf.Bytes()
		keep := append([]byte(nil), b[len(b)-16<<10:]...)
		t.buf.Reset()
		t.buf.Write(keep)
	}
	return len(p), nil
}

func (t *stderrTail) lines(n int) string {
	ls := strings.Split(strings.TrimSpace(t.buf.String()), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// exec runs trivy and returns the report it wrote to out.
func (o Options) exec(ctx context.Context, bin string, args []string, out string) ([]byte, error) {
	cmd := proc.Command(ctx, bin, args...)
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	if !o.AllowDownload {
		// No call home for a newer version either (ignored by old trivy).
		env = append(append([]string{}, env...), "TRIVY_SKIP_VERSION_CHECK=true")
	}
	cmd.Env = env
	tail := &stderrTail{}
	var stderr io.Writer = tail
	if o.Log != nil {
		stderr = io.MultiWriter(tail, o.Log)
	}
	cmd.Stderr = stderr
	cmd.Stdout = stderr // --output sends the report to a file; anything else is log
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("trivy %s: %w", args[0], ctx.Err())
		}
		msg := tail.lines(15)
		if strings.Contains(msg, "cannot be specified on the first run") {
			where := o.CacheDir
			if where == "" {
				where = "its default cache ($TRIVY_CACHE_DIR or ~/.cache/trivy)"
			}
			return nil, fmt.Errorf("%w in %s and downloads are off: fetch it once with `trivy image --download-db-only --cache-dir DIR` and set trivy_cache: DIR (--trivy-cache), or allow trivy_download: true (--trivy-download)\n%s", ErrNoDB, where, msg)
		}
		return nil, fmt.Errorf("trivy %s %s: %w\n%s", args[0], o.Target, err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("trivy %s %s exited 0 but wrote no report: %w", args[0], o.Target, err)
	}
	return raw, nil
}

// ReadReport reads an existing Trivy JSON report file.
func ReadReport(path string) (*Scan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read trivy report: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, vuln.MaxTrivyReport+1))
	if err != nil {
		return nil, fmt.Errorf("read trivy report %s: %w", path, err)
	}
	rep, err := vuln.ParseTrivy(path, raw)
	if err != nil {
		return nil, err
	}
	s := &Scan{Target: rep.ArtifactName, Digest: rep.Digest(), Parts: []Part{{Report: rep, Raw: raw}}}
	return s, nil
}

// StaleAfter is the database age past which a report warns.
const StaleAfter = 7 * 24 * time.Hour

// NewReport assembles gantry's report of the scan with the gate's
// verdict. The database field names Trivy's version and the database's
// build date when known, and a database older than StaleAfter adds a
// warning: with downloads off nothing refreshes it.
func (s *Scan) NewReport(v *vuln.Verdict, now time.Time) *vuln.Report {
	r := vuln.NewTrivyReport(s.Target, s.Reports(), v, now)
	if s.Digest != "" {
		r.Digest = s.Digest
	}
	if !s.DBUpdatedAt.IsZero() {
		r.Database += ", database of " + s.DBUpdatedAt.UTC().Format("2006-01-02 15:04 MST")
		if age := now.Sub(s.DBUpdatedAt); age > StaleAfter {
			v.Warnings = append(v.Warnings, fmt.Sprintf("the Trivy database is %d days old: refresh it with `trivy image --download-db-only`", int(age.Hours()/24)))
		}
	}
	return r
}
