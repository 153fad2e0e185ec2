package vuln

import (
	"bytes"
	"testing"

	"github.com/gantry-ci/gantry/internal/inventory"
)

func FuzzCVSS3Score(f *testing.F) {
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	f.Add("CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:C/C:L/I:N/A:N")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := CVSS3Score(v)
		if err == nil && (s < 0 || s > 10) {
			t.Errorf("CVSS3Score(%q) = %v, outside 0..10", v, s)
		}
	})
}

// FuzzEntry decodes arbitrary OSV JSON and matches it against a module.
func FuzzEntry(f *testing.F) {
	f.Add([]byte(`{"id":"GO-1","affected":[{"package":{"ecosystem":"Go","name":"m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]}]}`))
	f.Add([]byte(`{"id":"X","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N"}],"affected":[{"package":{"ecosystem":"Go","name":"m"},"versions":["v1.0.0"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decode("f.json", bytes.NewReader(data))
		if err != nil {
			return
		}
		db := NewDB("fuzz", []*Entry{e})
		inv := &inventory.Inventory{Binaries: []inventory.Binary{{GoVersion: "go1.20.1", Deps: []inventory.Module{{Path: "m", Version: "v1.0.0"}}}}}
		_ = Scan(inv, db)
	})
}
