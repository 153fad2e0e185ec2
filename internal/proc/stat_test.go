package proc

import "testing"

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       stat
		wantErr    bool
	}{
		{name: "plain", line: "42 (sleep) S 1 40 12 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 7777 2310144 229 18446744073709551615",
			want: stat{name: "sleep", state: 'S', pgid: 40, start: 7777}},
		{name: "odd name", line: "42 (a) b (c) Z 1 40 12 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 9 0 0 0",
			want: stat{name: "a) b (c", state: 'Z', pgid: 40, start: 9, zombie: true}},
		{name: "short", line: "42 (sleep) S 1 40", wantErr: true},
		{name: "no parens", line: "42 sleep S 1 40 12 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 7777", wantErr: true},
		{name: "bad pgrp", line: "42 (sleep) S 1 x 12 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 7777 0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseStat: got error %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("parseStat: got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (sleep) S 1 40 12 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 7777 2310144"))
	f.Add([]byte("1 ()) ) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseStat(b) // must not panic
	})
}
