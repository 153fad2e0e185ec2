package auth

import (
	"errors"
	"strings"
	"testing"
)

// fastArgon2 keeps the tests quick; the parameters are recorded in each
// hash, so they round-trip all the same.
var fastArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword([]byte("correct horse battery staple"), fastArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=64,t=1,p=1$"; !strings.HasPrefix(h, want) {
		t.Errorf("hash %q, want it to start with %q (parameters recorded)", h, want)
	}
	if strings.Contains(h, "horse") {
		t.Errorf("hash %q holds the password", h)
	}
	h2, err := HashPassword([]byte("correct horse battery staple"), fastArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"right", "correct horse battery staple", true},
		{"wrong", "correct horse battery stapler", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyPassword(h, []byte(tt.pw))
			if err != nil || got != tt.want {
				t.Errorf("VerifyPassword = %v, %v; want %v, nil", got, err, tt.want)
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	h, err := HashPassword([]byte("pw"), fastArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if NeedsRehash(h, fastArgon2) {
		t.Error("NeedsRehash with the same parameters = true, want false")
	}
	if !NeedsRehash(h, DefaultArgon2) {
		t.Error("NeedsRehash with stronger parameters = false, want true")
	}
}

func TestVerifyPasswordBadHash(t *testing.T) {
	for _, h := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$c2hvcnQ",
	} {
		t.Run(h, func(t *testing.T) {
			ok, err := VerifyPassword(h, []byte("pw"))
			if ok || !errors.Is(err, ErrBadHash) {
				t.Errorf("VerifyPassword(%q) = %v, %v; want false, ErrBadHash", h, ok, err)
			}
		})
	}
}

func FuzzVerifyPassword(f *testing.F) {
	h, _ := HashPassword([]byte("pw"), fastArgon2)
	f.Add(h)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, _, _, err := parseHash(s)
		if err != nil {
			return
		}
		if p.Memory > 1<<12 {
			return // valid but slow: the bound itself is tested above
		}
		_, _ = VerifyPassword(s, []byte("pw"))
	})
}

func TestCheckPasswordStrength(t *testing.T) {
	tests := []struct {
		pw   string
		weak bool
	}{
		{"short1!", true},
		{"password1234", true},
		{"aaaaaaaaaaaaaaaa", true},
		{"ann-gantry-ann-gantry", true},
		{"qwertyuiopasdf", true},
		{"vellum-oxbow-Trident-48-quasar", false},
		{"Hq7#pW2z!Lm9xR4t", false},
	}
	for _, tt := range tests {
		t.Run(tt.pw, func(t *testing.T) {
			err := CheckPasswordStrength([]byte(tt.pw), "ann", "gantry")
			var we *WeakPasswordError
			if got := errors.As(err, &we); got != tt.weak {
				t.Fatalf("CheckPasswordStrength(%q) = %v, want weak %v", tt.pw, err, tt.weak)
			}
			if err != nil && strings.Contains(err.Error(), tt.pw) {
				t.Errorf("error %q quotes the password", err)
			}
		})
	}
}

// BenchmarkVerifyPassword is the cost of one login's password check with
// the default parameters.
func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword([]byte("vellum-oxbow-Trident-48-quasar"), DefaultArgon2)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := VerifyPassword(h, []byte("vellum-oxbow-Trident-48-quasar")); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
