package provenance

import (
	"strings"
	"testing"
	"time"
)

func TestNewRoundTrip(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st, err := New(Input{
		Subjects:  []Subject{{Name: "svc", Digest: "sha256:" + strings.Repeat("a", 64)}},
		SourceURI: "https://example.com/r.git", SourceCommit: "abc",
		Modules:   []Module{{Path: "example.com/m", Version: "v1.0.0", Sum: "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}},
		GoVersion: "go1.26.8", BuilderID: "b", Started: start, Finished: start.Add(time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	deps := got.Predicate.BuildDefinition.ResolvedDependencies
	if len(deps) != 3 || deps[0].URI != "git+https://example.com/r.git@abc" || deps[0].Digest["gitCommit"] != "abc" {
		t.Fatalf("deps = %+v", deps)
	}
	if want := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; deps[2].Digest["dirhash1"] != want {
		t.Errorf("module digest = %v, want %s", deps[2].Digest, want)
	}
	if !got.Predicate.RunDetails.Metadata.StartedOn.Equal(start) {
		t.Errorf("startedOn = %v", got.Predicate.RunDetails.Metadata.StartedOn)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Input{}); err == nil {
		t.Error("no subject: no error")
	}
	if _, err := New(Input{Subjects: []Subject{{Name: "x", Digest: "nohex"}}}); err == nil {
		t.Error("bad digest: no error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1"}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		st, err := Parse([]byte(s))
		if err != nil {
			return
		}
		if _, err := st.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
}
