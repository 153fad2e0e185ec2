package vuln

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func osvJSON(id, eco, name string) string {
	return `{"id":"` + id + `","affected":[{"package":{"ecosystem":"` + eco + `","name":"` + name + `"}}]}`
}

func writeZip(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeTarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []interface{ Close() error }{tw, gz, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenDirWithArchives: a database directory may hold the OSV exports
// as archives (what `gantry vulndb update` stores) beside loose files;
// hidden files (metadata, downloads in progress) are not read.
func TestOpenDirWithArchives(t *testing.T) {
	dir := t.TempDir()
	writeZip(t, filepath.Join(dir, "Debian.zip"), map[string]string{"DSA-1.json": osvJSON("DSA-1", "Debian:12", "openssl")})
	writeTarGz(t, filepath.Join(dir, "go.tar.gz"), map[string]string{"data/osv/GO-1.json": osvJSON("GO-1", "Go", "golang.org/x/text")})
	if err := os.WriteFile(filepath.Join(dir, "GHSA-1.json"), []byte(osvJSON("GHSA-1", "Go", "example.com/m")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".partial.zip"), []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := db.Len(), 3; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	for _, c := range []struct{ eco, name, id string }{
		{"Debian", "openssl", "DSA-1"}, {"Go", "golang.org/x/text", "GO-1"}, {"Go", "example.com/m", "GHSA-1"},
	} {
		if got := db.lookup(c.eco, c.name); len(got) != 1 || got[0].ID != c.id {
			t.Errorf("lookup(%s, %s) = %v, want %s", c.eco, c.name, got, c.id)
		}
	}
}

// TestOpenDirBadArchive names the archive that does not read.
func TestOpenDirBadArchive(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "Go.zip")
	if err := os.WriteFile(bad, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if err == nil {
		t.Fatal("Open of a directory with a broken archive succeeded")
	}
	if got := err.Error(); !strings.Contains(got, bad) {
		t.Errorf("error %q does not name %s", got, bad)
	}
}
