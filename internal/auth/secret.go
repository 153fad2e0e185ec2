package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// TokenPrefix starts every API token, so that secret scanners and
// people recognise one.
const TokenPrefix = "gantry_"

// tokenBytes is the entropy of a token and of a session id: 256 bits.
const tokenBytes = 32

// randomString returns n random bytes, base64url without padding.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// secretHash is how tokens and session ids are stored: hex SHA-256. They
// carry 256 random bits, so a fast hash is enough.
func secretHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// newToken returns a new API token and its id.
func newToken() (token, id string, err error) {
	body, err := randomString(tokenBytes)
	if err != nil {
		return "", "", fmt.Errorf("new token: %w", err)
	}
	idb := make([]byte, 6)
	if _, err := rand.Read(idb); err != nil {
		return "", "", fmt.Errorf("new token id: %w", err)
	}
	return TokenPrefix + body, "tok_" + hex.EncodeToString(idb), nil
}

// looksLikeToken reports whether s has the shape of a gantry token.
func looksLikeToken(s string) bool {
	body, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok || len(body) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(body)
	return err == nil
}

// csrfFor is the CSRF token of a session: derived from the session id
// (which only the browser and nobody reading the store knows) under its
// own label, so that it needs no column and cannot be computed from the
// stored hash.
func csrfFor(sessionID string) string {
	sum := sha256.Sum256([]byte("gantry csrf\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
