package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/ccojocar/zxcvbn-go"
	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id parameters of a password hash. They are
// recorded in each hash (a PHC string), so raising them later leaves old
// hashes readable; NeedsRehash says when a hash is weaker than the
// current ones.
type Argon2Params struct {
	// Memory in KiB, Time (passes) and Threads (lanes).
	Memory  uint32
	Time    uint32
	Threads uint8
	// SaltLen and KeyLen in bytes.
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2 is what new hashes use: the first recommended option of
// RFC 9106 scaled to a server that logs in a few users a second (64 MiB,
// 3 passes, 2 lanes).
var DefaultArgon2 = Argon2Params{Memory: 64 * 1024, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}

// ErrBadHash is a stored password hash that cannot be read.
var ErrBadHash = errors.New("unreadable password hash")

// MinPasswordScore is the zxcvbn score (0-4) a new password needs.
const MinPasswordScore = 3

// MinPasswordLen is the fewest characters a new password may have.
const MinPasswordLen = 12

// WeakPasswordError is a password refused as too easy to guess. It never
// holds the password.
type WeakPasswordError struct {
	Score int
	// Why says what is wrong in words.
	Why string
}

func (e *WeakPasswordError) Error() string {
	return fmt.Sprintf("password too weak: %s (strength %d of 4, want at least %d)", e.Why, e.Score, MinPasswordScore)
}

// CheckPasswordStrength refuses a password shorter than MinPasswordLen
// or one zxcvbn scores below MinPasswordScore; userInputs (the user
// name, the server's name) count as known words.
func CheckPasswordStrength(pw []byte, userInputs ...string) error {
	n := len([]rune(string(pw)))
	if n < MinPasswordLen {
		return &WeakPasswordError{Score: 0, Why: fmt.Sprintf("%d characters, want at least %d", n, MinPasswordLen)}
	}
	m := zxcvbn.PasswordStrength(string(pw), userInputs)
	if m.Score < MinPasswordScore {
		return &WeakPasswordError{Score: m.Score, Why: "easy to guess (common words, names, sequences or repeats); use a longer passphrase or a password manager's"}
	}
	return nil
}

// HashPassword hashes pw with argon2id and p, returning the PHC string
// $argon2id$v=19$m=M,t=T,p=P$SALT$KEY (unpadded base64).
func HashPassword(pw []byte, p Argon2Params) (string, error) {
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.SaltLen < 8 || p.KeyLen < 16 {
		return "", fmt.Errorf("hash a password: argon2id parameters %+v out of range", p)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash a password: salt: %w", err)
	}
	key := argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// maxArgon2Memory bounds the memory a stored hash may ask for (4 GiB),
// so that a tampered row cannot exhaust the server.
const maxArgon2Memory = 4 << 20

// parseHash reads a PHC argon2id string.
func parseHash(encoded string) (Argon2Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrBadHash)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: argon2 version %q, want v=%d", ErrBadHash, parts[2], argon2.Version)
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: parameters %q", ErrBadHash, parts[3])
	}
	if p.Memory == 0 || p.Memory > maxArgon2Memory || p.Time == 0 || p.Time > 100 || p.Threads == 0 {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: parameters %q out of range", ErrBadHash, parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: salt: %v", ErrBadHash, err)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 1024 {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: key", ErrBadHash)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// VerifyPassword reports whether pw matches the encoded hash, comparing
// in constant time. An unreadable hash is an error (ErrBadHash).
func VerifyPassword(encoded string, pw []byte) (bool, error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters weaker
// than p (or is unreadable): the caller rehashes after a successful login.
func NeedsRehash(encoded string, p Argon2Params) bool {
	got, _, _, err := parseHash(encoded)
	if err != nil {
		return true
	}
	return got.Memory < p.Memory || got.Time < p.Time || got.KeyLen < p.KeyLen || got.SaltLen < p.SaltLen
}
