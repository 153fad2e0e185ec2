package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// fromCache looks the step up in the cache. On a hit it records the
// earlier outputs and artifacts for this run and returns ok.
func (r *runner) fromCache(ctx context.Context, s *spec.Step, rs *resolvedStep, impl step.Step, env *step.Env, rec *store.Step, logs *logSink) (*step.Result, bool) {
	if r.req.NoCache || (s.Cache != nil && !*s.Cache) {
		return nil, false
	}
	c, ok := impl.(step.Cacheable)
	if !ok {
		return nil, false
	}
	ck, err := c.CacheKey(ctx, env)
	if errors.Is(err, step.ErrNotCacheable) {
		return nil, false
	}
	if err != nil {
		logs.sys("cache: " + err.Error() + " (running the step)")
		return nil, false
	}
	key, err := r.cacheKey(s, rs, ck)
	if err != nil {
		logs.sys("cache: " + err.Error() + " (running the step)")
		return nil, false
	}
	rec.CacheKey = key
	hit, err := r.e.cache.LookupCache(ctx, key)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			logs.sys("cache: " + err.Error())
		}
		return nil, false
	}
	arts, err := r.e.artIndex.StepArtifacts(ctx, hit.RunID, hit.Stage, hit.Name)
	if err != nil {
		logs.sys("cache: " + err.Error())
		return nil, false
	}
	for _, a := range arts {
		if _, err := r.e.artifacts.Path(a.Digest); err != nil {
			logs.sys(fmt.Sprintf("cache: artifact %s of run %d is gone; running the step", a.Name, hit.RunID))
			return nil, false
		}
	}
	for _, a := range arts {
		a.RunID, a.Stage, a.Step = r.run.ID, rec.Stage, rec.Name
		if err := r.e.artIndex.AddArtifact(ctx, &a); err != nil {
			logs.sys("cache: " + err.Error())
			return nil, false
		}
	}
	from := hit.RunID
	if hit.CachedFrom != 0 {
		from = hit.CachedFrom
	}
	rec.Status = store.StatusCached
	rec.CachedFrom = from
	logs.sys(fmt.Sprintf("cache hit: reusing the result of run %d (%s)", from, shortKey(key)))
	summary := hit.Summary
	if summary == "" {
		summary = fmt.Sprintf("cached from run %d", from)
	}
	return &step.Result{Outputs: hit.Outputs, Summary: summary}, true
}

func shortKey(k string) string {
	if len(k) > 19 {
		return k[:19]
	}
	return k
}

// keyDoc is hashed into a cache key.
type keyDoc struct {
	Version  string            `json:"version"`
	Kind     string            `json:"kind"`
	Run      string            `json:"run,omitempty"`
	Shell    string            `json:"shell,omitempty"`
	With     any               `json:"with,omitempty"`
	Env      []string          `json:"env"`
	Services []string          `json:"services,omitempty"`
	Files    []string          `json:"files"`
	Extra    map[string]string `json:"extra,omitempty"`
}

// cacheKey digests everything the step's result depends on: its kind and
// resolved configuration, its environment (secrets by digest), its services
// and the content of its input files.
func (r *runner) cacheKey(s *spec.Step, rs *resolvedStep, ck step.CacheKey) (string, error) {
	doc := keyDoc{Version: r.e.version, Kind: r.e.kindOf(s), Shell: s.Shell, Extra: ck.Extra, Run: rs.script}
	if rs.with != nil && rs.with.Kind != 0 {
		var v any
		if err := rs.with.Decode(&v); err != nil {
			return "", fmt.Errorf("with: %w", err)
		}
		doc.With = v
	}
	doc.Env = append(doc.Env, rs.env...)
	for _, sec := range s.Secrets {
		sum := sha256.Sum256([]byte(r.secrets[sec.Value]))
		doc.Env = append(doc.Env, "secret:"+sec.Value+"="+hex.EncodeToString(sum[:]))
	}
	sort.Strings(doc.Env)
	for _, svc := range s.Services {
		doc.Services = append(doc.Services, svc.Value)
	}
	files, err := r.inputFiles(ck.Files)
	if err != nil {
		return "", err
	}
	for _, f := range files {
		d, err := r.fileDigest(f)
		if err != nil {
			return "", err
		}
		doc.Files = append(doc.Files, f+"@"+d)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// workspaceFiles lists the workspace's files (relative, slash-separated):
// those git tracks or would track, or every file outside .git when the
// workspace is not a git checkout. It lists them afresh on every call: an
// earlier step of the run may have created or removed files.
func (r *runner) workspaceFiles() ([]string, error) {
	return listFiles(r.req.Dir)
}

func listFiles(dir string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err == nil {
		seen := map[string]bool{}
		var files []string
		for _, f := range strings.Split(out.String(), "\x00") {
			if f == "" || seen[f] {
				continue
			}
			seen[f] = true
			// Deleted but still in the index: skip.
			if fi, err := os.Lstat(filepath.Join(dir, f)); err != nil || fi.IsDir() {
				continue
			}
			files = append(files, f)
		}
		sort.Strings(files)
		return files, nil
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list workspace files: %w", err)
	}
	sort.Strings(files)
	return files, nil
}

// inputFiles returns the workspace files matching patterns (all when nil,
// none when empty).
func (r *runner) inputFiles(patterns []string) ([]string, error) {
	if patterns != nil && len(patterns) == 0 {
		return nil, nil
	}
	for _, p := range patterns {
		if !doublestar.ValidatePattern(p) {
			return nil, fmt.Errorf("invalid input pattern %q", p)
		}
	}
	all, err := r.workspaceFiles()
	if err != nil {
		return nil, err
	}
	if patterns == nil {
		return all, nil
	}
	var out []string
	for _, f := range all {
		for _, p := range patterns {
			if ok, _ := doublestar.Match(p, f); ok || strings.HasPrefix(f, strings.TrimSuffix(p, "/")+"/") {
				out = append(out, f)
				break
			}
		}
	}
	return out, nil
}

// racyWindow: a digest is reused only for a file last modified at least
// this long before it was digested, so that a write in the same tick of
// the file system's clock, which may leave the stat facts unchanged, is
// never missed (git's "racy clean" rule).
const racyWindow = time.Second

// fileStat is what must not change for a remembered digest to stand.
type fileStat struct {
	size         int64
	mode         os.FileMode
	mtime, ctime int64 // Unix nanoseconds
	dev, ino     uint64
}

func statOf(fi os.FileInfo) fileStat {
	fs := fileStat{size: fi.Size(), mode: fi.Mode(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		fs.ctime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec).UnixNano()
		fs.dev, fs.ino = uint64(st.Dev), st.Ino
	}
	return fs
}

// memoDigest is a digest with the facts of the file it was computed from.
type memoDigest struct {
	stat   fileStat
	at     time.Time // when digesting began
	digest string
}

// fileDigest returns a file's content digest as the file is now. A digest
// computed earlier in the run is reused while the file's size, mode,
// times and inode are unchanged and it was not modified just before it
// was digested (see racyWindow); a step that rewrote the file changes its
// ctime, so the file is digested again.
func (r *runner) fileDigest(rel string) (string, error) {
	path := filepath.Join(r.req.Dir, rel)
	fi, err := os.Lstat(path)
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", rel, err)
	}
	st := statOf(fi)
	r.digestMu.Lock()
	m, ok := r.digests[rel]
	r.digestMu.Unlock()
	if ok && m.stat == st && m.at.UnixNano()-max(st.mtime, st.ctime) >= int64(racyWindow) {
		return m.digest, nil
	}
	at := time.Now()
	h := sha256.New()
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(path)
		if err != nil {
			return "", fmt.Errorf("digest %s: %w", rel, err)
		}
		h.Write([]byte("symlink:" + target))
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("digest %s: %w", rel, err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("digest %s: %w", rel, err)
		}
		if fi.Mode()&0o111 != 0 {
			h.Write([]byte{1})
		}
	}
	d := hex.EncodeToString(h.Sum(nil))
	r.digestMu.Lock()
	if r.digests == nil {
		r.digests = map[string]memoDigest{}
	}
	r.digests[rel] = memoDigest{stat: st, at: at, digest: d}
	r.digestMu.Unlock()
	return d, nil
}

// fileCache holds the file digests computed in a run (see fileDigest).
type fileCache struct {
	digestMu sync.Mutex
	digests  map[string]memoDigest
}
