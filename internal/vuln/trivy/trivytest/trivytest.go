// Package trivytest provides a fake trivy executable for tests.
package trivytest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeScript stands in for trivy. The real trivy cannot run in tests: it
// needs its vulnerability database, downloaded from the network (ghcr.io),
// which the test machines do not reach. The fake checks the arguments
// gantry must always pass, records them (args-N, one per line) and the
// one-image layout it was given (index-N.json, after checking the image's
// blob is reachable through it), then writes the report named by
// $FAKE_TRIVY_REPORT to --output, or fails with $FAKE_TRIVY_STDERR.
const fakeScript = `#!/bin/sh
set -eu
dir=$(dirname "$0")
n=$(ls "$dir" | grep -c '^args-' || true)
printf '%s\n' "$@" > "$dir/args-$n"
out= input= format= quiet=
while [ $# -gt 0 ]; do
  case "$1" in
    --output) out=$2; shift ;;
    --input) input=$2; shift ;;
    --format) format=$2; shift ;;
    --quiet) quiet=1 ;;
  esac
  shift
done
if [ -n "${FAKE_TRIVY_STDERR:-}" ]; then echo "$FAKE_TRIVY_STDERR" >&2; exit 1; fi
[ "$format" = json ] || { echo "fake trivy: want --format json" >&2; exit 2; }
[ -n "$quiet" ] || { echo "fake trivy: want --quiet" >&2; exit 2; }
[ -n "$out" ] || { echo "fake trivy: want --output" >&2; exit 2; }
if [ -n "$input" ] && [ -d "$input" ]; then
  cp "$input/index.json" "$dir/index-$n.json"
  d=$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$input/index.json")
  [ -f "$input/blobs/sha256/$d" ] || { echo "fake trivy: blob $d not in $input" >&2; exit 2; }
fi
cp "$FAKE_TRIVY_REPORT" "$out"
`

// Install installs the fake trivy in a fresh directory and returns it and an
// environment whose PATH holds only that directory.
func Install(t testing.TB, report string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "trivy"), []byte(fakeScript), 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(report)
	if err != nil {
		t.Fatal(err)
	}
	// The fake uses only shell builtins and coreutils from /usr/bin, /bin.
	return dir, []string{"PATH=" + dir + ":/usr/bin:/bin", "FAKE_TRIVY_REPORT=" + abs}
}

// Calls returns the arguments of every run of the fake in dir, in order.
func Calls(t testing.TB, dir string) [][]string {
	t.Helper()
	var out [][]string
	for i := 0; ; i++ {
		data, err := os.ReadFile(filepath.Join(dir, "args-"+strconv.Itoa(i)))
		if err != nil {
			return out
		}
		out = append(out, strings.Split(strings.TrimSpace(string(data)), "\n"))
	}
}
