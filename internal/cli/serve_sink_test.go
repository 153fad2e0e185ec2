package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListenSinkKeepsItsAddress: a restarted serve process listens for
// the sink where the last one did, so instances started before reach it;
// a taken address is replaced and recorded.
func TestListenSinkKeepsItsAddress(t *testing.T) {
	dir := t.TempDir()
	ln, err := listenSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := ln.Addr().String()
	ln.Close()
	ln, err = listenSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := ln.Addr().String(); got != first {
		t.Errorf("after a restart: got %s, want %s", got, first)
	}
	// Still held: the next one must move and record the new address.
	other, err := listenSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ln.Close()
	b, err := os.ReadFile(filepath.Join(dir, "sink", "addr"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), other.Addr().String(); got != want || got == first {
		t.Errorf("recorded address: got %s, want the new %s (not %s)", got, want, first)
	}
}
