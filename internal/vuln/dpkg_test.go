package vuln

import (
	"os/exec"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

var debPairs = [][2]string{
	{"1.0", "1.0"}, {"1.0", "1.1"}, {"1.0-1", "1.0-2"}, {"1:0.9", "2.0"}, {"1.0~rc1", "1.0"},
	{"1.0~rc1", "1.0~rc2"}, {"1.0+deb12u1", "1.0"}, {"3.0.13-1~deb12u1", "3.0.13-1"}, {"3.0.13-1~deb12u1", "3.0.11-1~deb12u2"},
	{"2.36-9+deb12u4", "2.36-9+deb12u10"}, {"1.2.3a", "1.2.3"}, {"0010", "9"}, {"1.0.0", "1.0"},
	{"7.88.1-10+deb12u5", "7.88.1-10+deb12u12"}, {"1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+b1"}, {"a", "B"}, {"1~", "1~~"}, {"1.", "1"},
}

// TestCompareDebAgainstDpkg checks every pair against the real
// `dpkg --compare-versions`.
func TestCompareDebAgainstDpkg(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		testenv.Missing(t, "dpkg", "apt-get install dpkg")
	}
	for _, p := range debPairs {
		for _, pair := range [][2]string{p, {p[1], p[0]}} {
			got := compareDeb(pair[0], pair[1])
			want := 0
			for _, op := range []struct {
				op string
				v  int
			}{{"lt", -1}, {"gt", 1}} {
				if proc.Command(t.Context(), dpkg, "--compare-versions", pair[0], op.op, pair[1]).Run() == nil {
					want = op.v
				}
			}
			if got != want {
				t.Errorf("compareDeb(%q, %q) = %d, dpkg says %d", pair[0], pair[1], got, want)
			}
		}
	}
}

func FuzzCompareDeb(f *testing.F) {
	for _, p := range debPairs {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if x, y := compareDeb(a, b), compareDeb(b, a); x != -y {
			t.Errorf("compareDeb(%q,%q)=%d but reversed %d", a, b, x, y)
		}
	})
}
