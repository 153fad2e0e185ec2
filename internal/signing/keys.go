// Package signing signs container images and in-toto attestations in
// cosign's formats and verifies them.
//
// A signature is a simple-signing payload whose ECDSA (or Ed25519, RSA)
// signature rides in the annotation dev.cosignproject.cosign/signature of
// one layer of the image tagged sha256-<hex>.sig next to the signed image;
// an attestation is a DSSE envelope around an in-toto statement, one layer
// of the image tagged sha256-<hex>.att. `cosign verify --key` and `cosign
// verify-attestation --key` accept what this package writes, and Verify
// accepts what cosign writes.
//
// Keys are cosign's: an encrypted private key file (scrypt and NaCl
// secretbox, PEM type ENCRYPTED SIGSTORE PRIVATE KEY) with its PEM public
// key, or a KMS key named by URI (awskms://, gcpkms://, azurekms://,
// hashivault://) through the sigstore KMS providers.
package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// PEM block types of cosign key files.
const (
	PrivateKeyPEMType       = "ENCRYPTED SIGSTORE PRIVATE KEY"
	legacyPrivateKeyPEMType = "ENCRYPTED COSIGN PRIVATE KEY"
	publicKeyPEMType        = "PUBLIC KEY"
)

// PasswordEnv is the variable cosign reads a key's password from; gantry
// reads the same one.
const PasswordEnv = "COSIGN_PASSWORD"

// Key file names in a key directory, as `cosign generate-key-pair` names
// them.
const (
	PrivateKeyFile = "cosign.key"
	PublicKeyFile  = "cosign.pub"
)

// ErrBadPassword says a key file could not be decrypted with the password.
var ErrBadPassword = errors.New("wrong password for the signing key")

// Signer signs with one key.
type Signer struct {
	sv signature.SignerVerifier
	// ID is "sha256:" and the hex SHA-256 of the public key's DER
	// SubjectPublicKeyInfo; signatures carry it so that verification can
	// tell a wrong key from an altered payload.
	ID string
	// Ref names the key for messages: a file path or a KMS URI.
	Ref string
}

// Verifier checks signatures against one public key.
type Verifier struct {
	v   signature.Verifier
	ID  string
	Ref string
}

// Verifier returns the verifier of the signer's public key.
func (s *Signer) Verifier() *Verifier { return &Verifier{v: s.sv, ID: s.ID, Ref: s.Ref} }

// PublicKeyPEM returns the signer's public key in PEM.
func (s *Signer) PublicKeyPEM() ([]byte, error) {
	pub, err := s.sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("public key of %s: %w", s.Ref, err)
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}

// IsKMS reports whether ref names a KMS key (scheme://...) rather than a
// file.
func IsKMS(ref string) bool {
	scheme, _, ok := strings.Cut(ref, "://")
	return ok && scheme != "" && !strings.ContainsAny(scheme, `/\`)
}

// GenerateKeyPair makes an ECDSA P-256 key pair, as `cosign
// generate-key-pair` does, and returns the private key encrypted with
// password and the public key, both PEM-encoded.
func GenerateKeyPair(password []byte) (priv, pub []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt key: %w", err)
	}
	pub, err = cryptoutils.MarshalPublicKeyToPEM(key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEMType, Bytes: enc}), pub, nil
}

// WriteKeyPair generates a key pair into dir as cosign.key (mode 0600) and
// cosign.pub. It refuses to overwrite an existing cosign.key.
func WriteKeyPair(dir string, password []byte) (privPath, pubPath string, err error) {
	privPath, pubPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("key directory: %w", err)
	}
	priv, pub, err := GenerateKeyPair(password)
	if err != nil {
		return "", "", err
	}
	f, err := os.OpenFile(privPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("write private key: %w", err)
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return "", "", fmt.Errorf("write private key: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("write private key: %w", err)
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		return "", "", fmt.Errorf("write public key: %w", err)
	}
	return privPath, pubPath, nil
}

// LoadSigner opens the key ref: a KMS URI, or a cosign private key file
// decrypted with password.
func LoadSigner(ctx context.Context, ref string, password []byte) (*Signer, error) {
	if IsKMS(ref) {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			return nil, kmsError(ref, err)
		}
		return newSigner(sv, ref)
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("signing key %s: not a PEM file", ref)
	}
	if block.Type != PrivateKeyPEMType && block.Type != legacyPrivateKeyPEMType {
		return nil, fmt.Errorf("signing key %s: PEM type %q, want %q (a key from `cosign generate-key-pair` or `gantry keys generate`)", ref, block.Type, PrivateKeyPEMType)
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w (set %s)", ref, ErrBadPassword, PasswordEnv)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", ref, err)
	}
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", ref, err)
	}
	return newSigner(sv, ref)
}

func newSigner(sv signature.SignerVerifier, ref string) (*Signer, error) {
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("public key of %s: %w", ref, err)
	}
	id, err := keyID(pub)
	if err != nil {
		return nil, fmt.Errorf("public key of %s: %w", ref, err)
	}
	return &Signer{sv: sv, ID: id, Ref: ref}, nil
}

// LoadVerifier opens the public key ref: a KMS URI or a PEM public key
// file (cosign.pub).
func LoadVerifier(ctx context.Context, ref string) (*Verifier, error) {
	if IsKMS(ref) {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			return nil, kmsError(ref, err)
		}
		s, err := newSigner(sv, ref)
		if err != nil {
			return nil, err
		}
		return s.Verifier(), nil
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return ParseVerifier(ref, data)
}

// ParseVerifier reads a PEM public key; ref names it in messages.
func ParseVerifier(ref string, data []byte) (*Verifier, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("public key %s: not a PEM file", ref)
	}
	if block.Type != publicKeyPEMType {
		return nil, fmt.Errorf("public key %s: PEM type %q, want %q (the .pub file, not the private key)", ref, block.Type, publicKeyPEMType)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", ref, err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", ref, err)
	}
	id, err := keyID(pub)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", ref, err)
	}
	return &Verifier{v: v, ID: id, Ref: ref}, nil
}

func keyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func kmsError(ref string, err error) error {
	var nf *kms.ProviderNotFoundError
	if errors.As(err, &nf) {
		known := kms.SupportedProviders()
		sort.Strings(known)
		return fmt.Errorf("key %s: no KMS provider for this URI; gantry knows %s", ref, strings.Join(known, ", "))
	}
	return fmt.Errorf("KMS key %s: %w", ref, err)
}

func signOpts(ctx context.Context) []signature.SignOption {
	return []signature.SignOption{options.WithContext(ctx)}
}

func verifyOpts(ctx context.Context) []signature.VerifyOption {
	return []signature.VerifyOption{options.WithContext(ctx)}
}

// DefaultKeyDir is where gantry keeps the key it generates when no key is
// configured: STATE_DIR/keys, mode 0700, outside every workspace.
func DefaultKeyDir(stateDir string) string { return filepath.Join(stateDir, "keys") }

// EnsureDefaultKey returns the default key pair under stateDir, generating
// it (encrypted with password) on first use.
func EnsureDefaultKey(stateDir string, password []byte) (priv, pub string, created bool, err error) {
	dir := DefaultKeyDir(stateDir)
	priv, pub = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	if _, err := os.Stat(priv); err == nil {
		return priv, pub, false, nil
	}
	priv, pub, err = WriteKeyPair(dir, password)
	if errors.Is(err, os.ErrExist) {
		// Another process generated it first.
		return filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile), false, nil
	}
	return priv, pub, err == nil, err
}
