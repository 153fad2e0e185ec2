package gotest

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"
)

func TestRunReportsRace(t *testing.T) {
	needGo(t)
	r, err := Run(context.Background(), Options{Dir: fixture(t, "race"), Race: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Races) == 0 {
		t.Fatalf("no race reported; packages: %+v", r.Packages)
	}
	if !strings.Contains(r.Races[0], "WARNING: DATA RACE") || !strings.Contains(r.Races[0], "race.go") {
		t.Errorf("race report lacks the warning or the racy file:\n%s", r.Races[0])
	}
	failed, _ := r.Failed()
	if len(failed) != 1 || failed[0].Name != "TestCountRace" || !failed[0].Race {
		t.Errorf("failed tests = %+v, want TestCountRace marked as race", failed)
	}
}

func TestRunFailingTestOutput(t *testing.T) {
	needGo(t)
	r, err := Run(context.Background(), Options{Dir: fixture(t, "fail")})
	if err != nil {
		t.Fatal(err)
	}
	tests, failed, skipped := r.Counts()
	if tests != 2 || failed != 1 || skipped != 0 {
		t.Errorf("counts = %d/%d/%d, want 2/1/0", tests, failed, skipped)
	}
	ft, _ := r.Failed()
	if len(ft) != 1 || !strings.Contains(ft[0].Output, "the fixture's own output") || !strings.Contains(ft[0].Output, "got 1, want 2") {
		t.Errorf("failed test output = %+v", ft)
	}
	var b bytes.Buffer
	if err := WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("JUnit XML does not parse: %v\n%s", err, b.String())
	}
	if got.Tests != 2 || got.Failures != 1 || len(got.Suites) != 1 || got.Suites[0].Name != "example.com/fail" {
		t.Errorf("JUnit = %+v", got)
	}
}

func TestParseStream(t *testing.T) {
	in := `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.5}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:3: boom\n"}
{"Action":"fail","Package":"p","Test":"TestB","Elapsed":0}
{"Action":"run","Package":"p","Test":"TestC"}
{"Action":"skip","Package":"p","Test":"TestC"}
{"Action":"run","Package":"p","Test":"TestD"}
{"Action":"output","Package":"p","Output":"coverage: 50.0% of statements\n"}
{"Action":"fail","Package":"p","Elapsed":1.2}
# q
not json
{"Action":"fail","Package":"q","Elapsed":0,"FailedBuild":"q"}
`
	r, err := ParseStream(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	tests, failed, skipped := r.Counts()
	if tests != 4 || failed != 2 || skipped != 1 {
		t.Errorf("counts = %d/%d/%d, want 4/2/1 (TestD never finished: failed)", tests, failed, skipped)
	}
	if got, want := r.Packages[0].Coverage, "50.0% of statements"; got != want {
		t.Errorf("coverage line = %q, want %q", got, want)
	}
	if !strings.Contains(r.BuildErrors, "not json") {
		t.Errorf("build errors = %q", r.BuildErrors)
	}
	_, pkgs := r.Failed()
	if len(pkgs) != 1 || pkgs[0].Name != "q" {
		t.Errorf("failed packages = %+v, want q", pkgs)
	}
}

func FuzzParseStream(f *testing.F) {
	f.Add(`{"Action":"output","Package":"p","Test":"T","Output":"WARNING: DATA RACE\n"}`)
	f.Add(`{"Action":"fail","Package":"p"}`)
	f.Add("{")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseStream(strings.NewReader(s))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteJUnit(&b, r); err != nil {
			t.Fatal(err)
		}
	})
}
