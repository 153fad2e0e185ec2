package mask

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// gantry:ignore generic-secret -- a fake secret the masking tests hide
const secret = "s3cr3t/t0ken+with&odd=chars"

func TestMask(t *testing.T) {
	m := New(secret, "ab") // "ab" is too short to mask
	tests := []struct {
		name, in string
	}{
		{"plain", "token is " + secret + " ok"},
		{"base64", "auth: " + base64.StdEncoding.EncodeToString([]byte(secret))},
		{"base64url", "auth: " + base64.URLEncoding.EncodeToString([]byte(secret))},
		{"base64 inside a longer blob, offset 1", base64.StdEncoding.EncodeToString([]byte("x" + secret + "tail"))},
		{"base64 inside a longer blob, offset 2", base64.StdEncoding.EncodeToString([]byte("xy" + secret + "tail"))},
		{"basic auth header", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+secret))},
		{"query escaped", "https://x.example/?t=" + url.QueryEscape(secret)},
		{"path escaped", "https://x.example/" + url.PathEscape(secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.Mask(tt.in)
			if !strings.Contains(got, Redacted) {
				t.Fatalf("Mask(%q) = %q, want the secret redacted", tt.in, got)
			}
			for _, v := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), url.QueryEscape(secret)} {
				if strings.Contains(got, v) {
					t.Errorf("Mask(%q) = %q still holds %q", tt.in, got, v)
				}
			}
		})
	}
	if got, want := m.Mask("ab cd"), "ab cd"; got != want {
		t.Errorf("short value masked: got %q, want %q", got, want)
	}
}

func TestMultilineSecret(t *testing.T) {
	key := "-----BEGIN KEY-----\nMIIBVwIBADANBgkq\n-----END KEY-----"
	m := New(key)
	got := m.Mask("line MIIBVwIBADANBgkq here")
	if strings.Contains(got, "MIIBVwIBADANBgkq") {
		t.Errorf("a line of a multi-line secret leaked: %q", got)
	}
}

func TestWriterSplitWrites(t *testing.T) {
	var out strings.Builder
	w := NewWriter(New(secret), &out)
	text := "start " + secret + " end\nsecond line " + secret
	for i := 0; i < len(text); i += 3 { // split mid-secret on purpose
		if _, err := w.Write([]byte(text[i:min(len(text), i+3)])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	want := "start *** end\nsecond line ***"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriterLongLine(t *testing.T) {
	var out strings.Builder
	w := NewWriter(New(secret), &out)
	long := strings.Repeat("a", flushAt-10) + secret + strings.Repeat("b", 100)
	if _, err := w.Write([]byte(long)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(strings.Repeat("c", flushAt))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), secret) {
		t.Error("secret leaked through a long unterminated line")
	}
	if got, want := strings.Count(out.String(), Redacted), 1; got != want {
		t.Errorf("redactions: got %d, want %d", got, want)
	}
}

func FuzzMaskNeverLeaks(f *testing.F) {
	f.Add("prefix ", "suffix", 3)
	f.Fuzz(func(t *testing.T, pre, post string, chunk int) {
		if chunk <= 0 || chunk > 64 {
			chunk = 7
		}
		var out strings.Builder
		w := NewWriter(New(secret), &out)
		text := pre + secret + post
		for i := 0; i < len(text); i += chunk {
			_, _ = w.Write([]byte(text[i:min(len(text), i+chunk)]))
		}
		_ = w.Close()
		if strings.Contains(out.String(), secret) {
			t.Fatalf("secret leaked: %q", out.String())
		}
	})
}

func TestMaskJSONEscaped(t *testing.T) {
	m := New(`pa"ss<w>rd&\x`)
	for _, in := range []string{`{"p":"pa\"ss\u003cw\u003erd\u0026\\x"}`, `{"p":"pa\"ss<w>rd&\\x"}`} {
		if got, want := m.Mask(in), `{"p":"***"}`; got != want {
			t.Errorf("Mask(%s) = %s, want %s", in, got, want)
		}
	}
}
