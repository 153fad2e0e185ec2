package vuln

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxEntry bounds one OSV file.
const maxEntry = 16 << 20

// DB is a set of OSV entries indexed by ecosystem and package name.
type DB struct {
	// Source names where the entries came from.
	Source  string
	entries map[string][]*Entry // "Go|golang.org/x/text" -> entries
	n       int
}

// Len returns the number of entries loaded.
func (db *DB) Len() int { return db.n }

// NewDB indexes entries (withdrawn entries are dropped).
func NewDB(source string, entries []*Entry) *DB {
	db := &DB{Source: source, entries: map[string][]*Entry{}}
	for _, e := range entries {
		db.add(e)
	}
	return db
}

func (db *DB) add(e *Entry) {
	if e.Withdrawn != nil || e.ID == "" {
		return
	}
	db.n++
	seen := map[string]bool{}
	for _, a := range e.Affected {
		k := key(a.Package.Ecosystem, a.Package.Name)
		if !seen[k] {
			seen[k] = true
			db.entries[k] = append(db.entries[k], e)
		}
	}
}

func key(eco, name string) string {
	// Ecosystems carry releases ("Debian:12"); packages match by base.
	eco, _, _ = strings.Cut(eco, ":")
	return eco + "|" + name
}

// lookup returns the entries affecting name in ecosystem eco.
func (db *DB) lookup(eco, name string) []*Entry { return db.entries[key(eco, name)] }

// Open loads OSV entries from a directory (every *.json below it and every
// .zip, .tar.gz or .tgz of OSV JSON files in it), a .tar.gz/.tgz or a .zip
// of OSV JSON files.
func Open(path string) (*DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open vulnerability database: %w", err)
	}
	var entries []*Entry
	switch {
	case fi.IsDir():
		entries, err = loadDir(path)
	case isTarGz(path):
		entries, err = loadTarGz(path)
	case strings.HasSuffix(path, ".zip"):
		entries, err = loadZip(path)
	case strings.HasSuffix(path, ".json"):
		var e *Entry
		e, err = loadFile(path)
		entries = []*Entry{e}
	default:
		return nil, fmt.Errorf("open vulnerability database %s: want a directory, .tar.gz, .zip or .json file", path)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].ID < entries[j].ID })
	return NewDB(path, entries), nil
}

// isEntryFile skips the Go database's index files.
func isEntryFile(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, ".json") && !strings.HasPrefix(base, ".") &&
		!strings.Contains(filepath.ToSlash(name), "index/") && base != "db.json" && base != "modules.json" && base != "vulns.json"
}

func decode(name string, r io.Reader) (*Entry, error) {
	var e Entry
	data, err := io.ReadAll(io.LimitReader(r, maxEntry+1))
	if err != nil {
		return nil, fmt.Errorf("read OSV entry %s: %w", name, err)
	}
	if len(data) > maxEntry {
		return nil, fmt.Errorf("read OSV entry %s: larger than %d bytes", name, maxEntry)
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode OSV entry %s: %w", name, err)
	}
	return &e, nil
}

func loadFile(path string) (*Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open OSV entry: %w", err)
	}
	defer f.Close()
	return decode(path, f)
}

// loadDir reads every OSV JSON file below dir and every archive of them
// (.zip, .tar.gz, .tgz) there, as `gantry vulndb update` stores the
// exports. Hidden files and directories (metadata, downloads in
// progress) are skipped.
func loadDir(dir string) ([]*Entry, error) {
	var out []*Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		hidden := p != dir && strings.HasPrefix(d.Name(), ".")
		if d.IsDir() {
			if hidden {
				return filepath.SkipDir
			}
			return nil
		}
		if hidden {
			return nil
		}
		var es []*Entry
		switch {
		case isTarGz(p):
			es, err = loadTarGz(p)
		case strings.HasSuffix(p, ".zip"):
			es, err = loadZip(p)
		case isEntryFile(p):
			var e *Entry
			e, err = loadFile(p)
			es = []*Entry{e}
		}
		if err != nil {
			return err
		}
		out = append(out, es...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load vulnerability database %s: %w", dir, err)
	}
	return out, nil
}

func isTarGz(p string) bool { return strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tgz") }

func loadTarGz(path string) ([]*Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open vulnerability database: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("read vulnerability database %s: %w", path, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out []*Entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read vulnerability database %s: %w", path, err)
		}
		if h.Typeflag != tar.TypeReg || !isEntryFile(h.Name) {
			continue
		}
		e, err := decode(path+":"+h.Name, tr)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

func loadZip(path string) ([]*Entry, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("read vulnerability database %s: %w", path, err)
	}
	defer zr.Close()
	var out []*Entry
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !isEntryFile(f.Name) {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("read %s in %s: %w", f.Name, path, err)
		}
		e, err := decode(path+":"+f.Name, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
