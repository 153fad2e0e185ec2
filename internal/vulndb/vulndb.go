// Package vulndb keeps gantry's OSV vulnerability database in the state
// directory: it fetches the OSV exports (by default those of the Go and
// Debian ecosystems, as Trivy and osv-scanner fetch theirs), records when,
// and hands the vuln-scan step a database that is fresh enough, updating
// it on first use. A failed update never loses the database already
// stored.
package vulndb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/flock"
	"github.com/gantry-ci/gantry/internal/vuln"
)

// OSVBase is where OSV publishes one export per ecosystem,
// OSVBase/<ecosystem>/all.zip.
const OSVBase = "https://osv-vulnerabilities.storage.googleapis.com"

// DefaultSources are the exports fetched when none are named: the Go
// vulnerability database (Go modules and the standard library) and
// Debian's security advisories (OS packages of Debian-based images).
var DefaultSources = []string{OSVBase + "/Go/all.zip", OSVBase + "/Debian/all.zip"}

// DefaultMaxAge is how old a database may be before vuln-scan updates it.
const DefaultMaxAge = 24 * time.Hour

// MaxDownload bounds one export (the Debian export is the largest, a few
// hundred MiB).
const MaxDownload = 2 << 30

// Environment variables.
const (
	// OverrideEnv names a database (directory or archive) to use as is:
	// nothing is fetched.
	OverrideEnv = "GANTRY_VULN_DB"
	// OfflineEnv, set to 1 or true, forbids fetching: the stored
	// database is used however old, and a missing one is an error.
	OfflineEnv = "GANTRY_VULN_DB_OFFLINE"
	// SourcesEnv lists the exports to fetch (URLs or files, separated by
	// spaces or commas) when the stored database records none, e.g. a
	// mirror.
	SourcesEnv = "GANTRY_VULN_DB_SOURCES"
)

// metaFile records the fetch in the database directory; hidden, so the
// loader skips it.
const metaFile = ".gantry-vulndb.json"

// ErrNoDB is returned (wrapped) when there is no database and none can be
// fetched.
var ErrNoDB = errors.New("no vulnerability database")

// Dir is where the database lives in a state directory.
func Dir(stateDir string) string { return filepath.Join(stateDir, "vulndb") }

// Meta is what the database directory records about its last update.
type Meta struct {
	// FetchedAt is when the update that stored these files ended.
	FetchedAt time.Time `json:"fetched_at"`
	// Sources are the exports, in the order given.
	Sources []Fetched `json:"sources"`
}

// Fetched is one stored export.
type Fetched struct {
	// Source is the URL (without credentials) or file it came from.
	Source string `json:"source"`
	// File is its name in the database directory.
	File    string `json:"file"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	Entries int    `json:"entries"`
}

// SourceList returns the sources m was fetched from.
func (m *Meta) SourceList() []string {
	out := make([]string, 0, len(m.Sources))
	for _, s := range m.Sources {
		out = append(out, s.Source)
	}
	return out
}

// Entries is the number of OSV entries stored.
func (m *Meta) Entries() int {
	n := 0
	for _, s := range m.Sources {
		n += s.Entries
	}
	return n
}

// ReadMeta reads the record of the database in dir; it wraps
// os.ErrNotExist when the directory holds no database gantry fetched.
func ReadMeta(dir string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, fmt.Errorf("read vulnerability database record: %w", err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read vulnerability database record %s: %w", filepath.Join(dir, metaFile), err)
	}
	return &m, nil
}

// Options configure Update and Ensure.
type Options struct {
	// StateDir holds the database (STATE_DIR/vulndb). Required.
	StateDir string
	// Sources are the exports to fetch: http(s) URLs or local files
	// (.zip or .tar.gz of OSV JSON). Default: the sources of the stored
	// database, else $GANTRY_VULN_DB_SOURCES, else DefaultSources.
	Sources []string
	// Offline forbids fetching (Ensure only).
	Offline bool
	// MaxAge is how old the database may be before Ensure updates it;
	// default DefaultMaxAge.
	MaxAge time.Duration
	// Client fetches URLs; default a client with a 10 minute timeout.
	Client *http.Client
	// Progress receives one line per action for the user (may be nil).
	Progress io.Writer
	// Getenv reads the environment (default os.Getenv); the vuln-scan
	// step passes its own variables.
	Getenv func(string) string
	// Now is the clock the age is measured with; default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Minute}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// sources picks what to fetch: explicit, recorded, environment, default.
func (o *Options) sources(old *Meta) []string {
	if len(o.Sources) > 0 {
		return o.Sources
	}
	if old != nil && len(old.Sources) > 0 {
		return old.SourceList()
	}
	if env := strings.FieldsFunc(o.Getenv(SourcesEnv), func(r rune) bool { return r == ',' || r == ' ' }); len(env) > 0 {
		return env
	}
	return DefaultSources
}

// Update fetches the sources into the database directory, checks that each
// reads as OSV data, then replaces the stored files and records the fetch.
// Concurrent updates of one state directory take turns; if any source
// fails, the stored database is left as it was.
func Update(ctx context.Context, o Options) (*Meta, error) {
	o.defaults()
	if o.StateDir == "" {
		return nil, errors.New("update vulnerability database: no state directory")
	}
	dir := Dir(o.StateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("update vulnerability database: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(o.StateDir, "vulndb.lock"))
	if err != nil {
		return nil, fmt.Errorf("update vulnerability database: %w", err)
	}
	defer unlock()
	old, _ := ReadMeta(dir)
	return update(ctx, o, dir, old)
}

func update(ctx context.Context, o Options, dir string, old *Meta) (*Meta, error) {
	srcs := o.sources(old)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("update vulnerability database: %w", err)
	}
	meta := &Meta{}
	var temps []string
	defer func() {
		for _, t := range temps {
			_ = os.Remove(t)
		}
	}()
	used := map[string]bool{}
	for i, src := range srcs {
		fmt.Fprintf(o.Progress, "vulndb: fetching %s\n", displaySource(src))
		tmp, f, err := fetch(ctx, o.Client, src, dir)
		if tmp != "" {
			temps = append(temps, tmp)
		}
		if err != nil {
			return nil, fmt.Errorf("update vulnerability database: %w", err)
		}
		f.File = fileName(i, src, f.File, used)
		db, err := vuln.Open(tmp)
		if err != nil {
			return nil, fmt.Errorf("update vulnerability database: %s: %w", displaySource(src), err)
		}
		if db.Len() == 0 {
			return nil, fmt.Errorf("update vulnerability database: %s holds no OSV entries", displaySource(src))
		}
		f.Entries = db.Len()
		fmt.Fprintf(o.Progress, "vulndb: %s: %d entries, %d bytes\n", displaySource(src), f.Entries, f.Size)
		meta.Sources = append(meta.Sources, f)
	}
	// Every source read: put the new files in place, then the record,
	// then drop files of sources no longer fetched.
	for i, f := range meta.Sources {
		if err := os.Rename(temps[i], filepath.Join(dir, f.File)); err != nil {
			return nil, fmt.Errorf("update vulnerability database: %w", err)
		}
	}
	temps = nil
	meta.FetchedAt = o.Now().UTC()
	if err := writeMeta(dir, meta); err != nil {
		return nil, err
	}
	if old != nil {
		for _, f := range old.Sources {
			if !used[f.File] && f.File == filepath.Base(f.File) && !strings.HasPrefix(f.File, ".") {
				_ = os.Remove(filepath.Join(dir, f.File))
			}
		}
	}
	return meta, nil
}

var (
	unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	dots       = regexp.MustCompile(`\.{2,}`)
)

// fileName names source i in the directory: a readable, unique name that
// keeps the archive's extension ext.
func fileName(i int, src, ext string, used map[string]bool) string {
	base := src
	if u, err := url.Parse(src); err == nil && u.Scheme != "" && u.Host != "" {
		// .../Go/all.zip -> Go-all
		base = strings.Trim(u.Path, "/")
		if parts := strings.Split(base, "/"); len(parts) > 2 {
			base = strings.Join(parts[len(parts)-2:], "/")
		}
	} else {
		base = filepath.Base(src)
	}
	for _, e := range []string{".zip", ".tar.gz", ".tgz"} {
		base = strings.TrimSuffix(base, e)
	}
	base = strings.Trim(dots.ReplaceAllString(unsafeName.ReplaceAllString(strings.ReplaceAll(base, "/", "-"), "_"), "_"), "._-")
	if base == "" {
		base = "osv"
	}
	name := fmt.Sprintf("%02d-%s%s", i+1, base, ext)
	used[name] = true
	return name
}

// fetch copies src (URL or file) into a hidden temporary file in dir and
// returns its path (named with the archive's extension, which the loader
// needs) and what it holds.
func fetch(ctx context.Context, client *http.Client, src, dir string) (string, Fetched, error) {
	f := Fetched{Source: displaySource(src)}
	var body io.ReadCloser
	if u, err := url.Parse(src); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return "", f, fmt.Errorf("fetch %s: %w", f.Source, err)
		}
		req.Header.Set("User-Agent", "gantry-vulndb")
		resp, err := client.Do(req)
		if err != nil {
			return "", f, fmt.Errorf("fetch %s: %w", f.Source, redactErr(err))
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", f, fmt.Errorf("fetch %s: %s", f.Source, resp.Status)
		}
		body = resp.Body
	} else if err == nil && u.Scheme != "" && u.Scheme != "file" && len(u.Scheme) > 1 {
		return "", f, fmt.Errorf("fetch %s: scheme %q: want an http(s) URL or a file", f.Source, u.Scheme)
	} else {
		path := strings.TrimPrefix(src, "file://")
		fi, err := os.Stat(path)
		if err != nil {
			return "", f, fmt.Errorf("read %s: %w", path, err)
		}
		if !fi.Mode().IsRegular() {
			return "", f, fmt.Errorf("read %s: not a regular file (want a .zip or .tar.gz of OSV JSON files)", path)
		}
		file, err := os.Open(path)
		if err != nil {
			return "", f, fmt.Errorf("read %s: %w", path, err)
		}
		body = file
	}
	defer body.Close()
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return "", f, fmt.Errorf("fetch %s: %w", f.Source, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, MaxDownload+1))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return tmp.Name(), f, fmt.Errorf("fetch %s: %w", f.Source, redactErr(err))
	}
	if n > MaxDownload {
		return tmp.Name(), f, fmt.Errorf("fetch %s: larger than %d bytes", f.Source, int64(MaxDownload))
	}
	f.Size, f.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	ext, err := sniff(tmp.Name())
	if err != nil {
		return tmp.Name(), f, fmt.Errorf("fetch %s: %w", f.Source, err)
	}
	f.File = ext
	named := tmp.Name() + ext
	if err := os.Rename(tmp.Name(), named); err != nil {
		return tmp.Name(), f, fmt.Errorf("fetch %s: %w", f.Source, err)
	}
	return named, f, nil
}

// sniff tells a zip from a gzip'd tar by their first bytes.
func sniff(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(file, head)
	switch {
	case bytes.Equal(head[:n], []byte("PK\x03\x04")), bytes.Equal(head[:n], []byte("PK\x05\x06")):
		return ".zip", nil
	case n >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return ".tar.gz", nil
	}
	return "", errors.New("not a .zip or .tar.gz of OSV JSON files")
}

// displaySource drops credentials from a URL.
func displaySource(src string) string {
	if u, err := url.Parse(src); err == nil && u.User != nil {
		return u.Redacted()
	}
	return src
}

// redactErr drops credentials from a *url.Error's URL.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: displaySource(ue.URL), Err: ue.Err}
	}
	return err
}

func writeMeta(dir string, m *Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("record vulnerability database: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".meta-*")
	if err != nil {
		return fmt.Errorf("record vulnerability database: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, metaFile))
	}
	if err != nil {
		return fmt.Errorf("record vulnerability database: %w", err)
	}
	return nil
}

// lock takes an exclusive flock on path, waiting for another holder
// (another gantry process or step) until ctx ends.
func lock(ctx context.Context, path string) (func(), error) {
	unlock, err := flock.Lock(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("wait for another update of the vulnerability database: %w", err)
	}
	return unlock, nil
}
