package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSplit(t *testing.T) {
	blue, green := newBackend(t, "blue", 0), newBackend(t, "green", 0)
	gp := New("prod-preview", nil)
	gp.Switch([]Backend{green.backend()})
	tests := []struct {
		name   string
		split  *Split
		header http.Header
		want   map[string]int // answers out of 100 requests
	}{
		{"none", nil, nil, map[string]int{"blue": 100}},
		{"header matches", &Split{Header: "X-Canary", Value: "yes"}, http.Header{"X-Canary": {"yes"}}, map[string]int{"green": 100}},
		{"header other value", &Split{Header: "X-Canary", Value: "yes"}, http.Header{"X-Canary": {"no"}}, map[string]int{"blue": 100}},
		{"header absent", &Split{Header: "X-Canary", Value: "yes"}, nil, map[string]int{"blue": 100}},
		{"header any value", &Split{Header: "x-canary"}, http.Header{"X-Canary": {"whatever"}}, map[string]int{"green": 100}},
		{"ten percent", &Split{Percent: 10}, nil, map[string]int{"blue": 90, "green": 10}},
		{"zero percent", &Split{Percent: 0}, nil, map[string]int{"blue": 100}},
		{"all", &Split{Percent: 100}, nil, map[string]int{"green": 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New("prod", nil)
			p.Switch([]Backend{blue.backend()})
			if tt.split != nil {
				tt.split.To = gp
				p.SetSplit(tt.split)
			}
			srv := httptest.NewServer(p)
			defer srv.Close()
			got := map[string]int{}
			for range 100 {
				req, _ := http.NewRequest("GET", srv.URL, nil)
				for k, v := range tt.header {
					req.Header[k] = v
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b := make([]byte, 16)
				n, _ := resp.Body.Read(b)
				resp.Body.Close()
				got[string(b[:n])]++
			}
			if len(got) != len(tt.want) || got["blue"] != tt.want["blue"] || got["green"] != tt.want["green"] {
				t.Errorf("answers = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSplitRemovedSendsAllBack: once the split is removed every request
// goes to the proxy's own set again (an abort's "traffic back to blue").
func TestSplitRemovedSendsAllBack(t *testing.T) {
	blue, green := newBackend(t, "blue", 0), newBackend(t, "green", 0)
	gp := New("prod-preview", nil)
	gp.Switch([]Backend{green.backend()})
	p := New("prod", nil)
	p.Switch([]Backend{blue.backend()})
	p.SetSplit(&Split{Percent: 50, To: gp})
	srv := httptest.NewServer(p)
	defer srv.Close()
	for range 10 {
		get(t, srv.Client(), srv.URL)
	}
	if green.served.Load() != 5 {
		t.Fatalf("green served %d of 10 at 50%%, want 5", green.served.Load())
	}
	p.SetSplit(nil)
	if p.CurrentSplit() != nil {
		t.Fatal("CurrentSplit after SetSplit(nil) is not nil")
	}
	for range 10 {
		if _, body := get(t, srv.Client(), srv.URL); body != "blue" {
			t.Errorf("after the split was removed: answer %q, want blue", body)
		}
	}
}
