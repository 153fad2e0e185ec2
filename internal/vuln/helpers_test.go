package vuln

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// goVulnDB is the real Go vulnerability database in OSV form, shipped with
// the project's shared test data.
func goVulnDB(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GANTRY_TEST_DATA")
	if dir == "" {
		dir = "/work/shared/data"
	}
	p := filepath.Join(dir, "go-vulndb-osv.tar.gz")
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "shared data go-vulndb-osv.tar.gz", err.Error()+"; set GANTRY_TEST_DATA to the shared data directory")
	}
	return p
}

var (
	dbOnce sync.Once
	dbVal  *DB
	dbErr  error
)

// loadGoVulnDB opens the real database once per test binary.
func loadGoVulnDB(t testing.TB) *DB {
	t.Helper()
	p := goVulnDB(t)
	dbOnce.Do(func() { dbVal, dbErr = Open(p) })
	if dbErr != nil {
		t.Fatal(dbErr)
	}
	return dbVal
}

// buildVulnApp builds testdata/vulnapp, which links golang.org/x/text
// v0.3.0, and returns the binary's path.
func buildVulnApp(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	src, err := filepath.Abs("testdata/vulnapp")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "vulnapp")
	cmd := proc.Command(t.Context(), "go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/vulnapp: %v\n%s", err, out)
	}
	return bin
}

func mustBinary(t testing.TB, bin string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.FromBinaryFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}
