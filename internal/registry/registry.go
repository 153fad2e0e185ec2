// Package registry is gantry's embedded OCI registry: the distribution
// project's registry (github.com/distribution/distribution/v3, the
// reference implementation of the OCI distribution spec) on its filesystem
// storage driver, plus the OCI 1.1 referrers API, which distribution does
// not implement yet: gantry indexes manifests that carry a subject as they
// are pushed and answers GET /v2/<name>/referrers/<digest> from that index.
// Everything lives under one directory and survives restarts.
package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // storage driver
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sirupsen/logrus"
)

// Handler serves the OCI distribution API from a directory.
type Handler struct {
	root string
	app  *handlers.App
	log  *slog.Logger
	mu   sync.Mutex
}

// NewHandler returns a handler whose content lives under root.
//
// distribution logs every request through logrus' standard logger (a
// global it offers no way around); unless logger is at debug level,
// NewHandler sends that output nowhere.
func NewHandler(ctx context.Context, root string, logger *slog.Logger) (h *Handler, err error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, d := range []string{"distribution", "referrers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("registry root: %w", err)
		}
	}
	if !logger.Enabled(ctx, slog.LevelDebug) {
		logrus.SetOutput(io.Discard)
	}
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{
		"filesystem":  configuration.Parameters{"rootdirectory": filepath.Join(root, "distribution")},
		"delete":      configuration.Parameters{"enabled": true},
		"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		"redirect":    configuration.Parameters{"disable": true},
	}
	cfg.Catalog.MaxEntries = 1000
	// Non-distributable layers name where they are fetched from; accept
	// any http(s) URL there, as the spec allows.
	cfg.Validation.Manifests.URLs.Allow = []string{"^https?://"}
	// The secret signs upload state; keeping it on disk lets uploads
	// resume across restarts.
	if cfg.HTTP.Secret, err = secret(filepath.Join(root, "http-secret")); err != nil {
		return nil, err
	}
	defer func() {
		// NewApp panics on bad configuration.
		if r := recover(); r != nil {
			err = fmt.Errorf("registry: %v", r)
		}
	}()
	app := handlers.NewApp(ctx, cfg)
	return &Handler{root: root, app: app, log: logger}, nil
}

// Close stops the registry's background work.
func (h *Handler) Close() error { return h.app.Shutdown() }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := checkRequest(r); err != nil {
		writeError(w, err.status, err.code, err.msg)
		return
	}
	repo, kind, ref, ok := parsePath(r.URL.Path)
	switch {
	case ok && kind == "referrers":
		h.referrers(w, r, repo, ref)
		return
	case ok && kind == "manifests" && r.Method == http.MethodPut:
		h.putManifest(w, r, repo, ref)
		return
	case ok && kind == "manifests" && r.Method == http.MethodDelete:
		rec := httptest.NewRecorder()
		h.app.ServeHTTP(rec, r)
		if rec.Code == http.StatusAccepted && strings.Contains(ref, ":") {
			if err := h.forgetReferrer(repo, ref); err != nil {
				h.log.Error("registry: forget referrer", "repo", repo, "ref", ref, "err", err)
			}
		}
		copyResponse(w, rec)
		return
	}
	h.app.ServeHTTP(w, r)
}

// parsePath splits /v2/<repo>/<kind>/<ref>.
func parsePath(p string) (repo, kind, ref string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 3 {
		return "", "", "", false
	}
	return strings.Join(parts[:len(parts)-2], "/"), parts[len(parts)-2], parts[len(parts)-1], true
}

// manifestFields are the parts of a manifest the referrers API reports.
type manifestFields struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       *v1.Descriptor    `json:"config"`
	Subject      *v1.Descriptor    `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

// referrer is one entry of a referrers index.
type referrer struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Subject      string            `json:"-"`
}

func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "read manifest: "+err.Error())
		return
	}
	if len(body) > 4<<20 {
		writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "manifest is over 4 MiB")
		return
	}
	if err := checkManifest(body); err != nil {
		writeError(w, err.status, err.code, err.msg)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	h.app.ServeHTTP(rec, r)
	if rec.Code == http.StatusCreated {
		var m manifestFields
		if json.Unmarshal(body, &m) == nil && m.Subject != nil {
			d := rec.Header().Get("Docker-Content-Digest")
			at := m.ArtifactType
			if at == "" && m.Config != nil {
				at = string(m.Config.MediaType)
			}
			mt := m.MediaType
			if mt == "" {
				mt = r.Header.Get("Content-Type")
			}
			ent := referrer{MediaType: mt, Digest: d, Size: int64(len(body)), ArtifactType: at, Annotations: m.Annotations, Subject: m.Subject.Digest.String()}
			if err := h.addReferrer(repo, ent); err != nil {
				h.log.Error("registry: index referrer", "repo", repo, "digest", d, "err", err)
				writeError(w, http.StatusInternalServerError, "UNKNOWN", "index referrer: "+err.Error())
				return
			}
			w.Header().Set("OCI-Subject", ent.Subject)
		}
	}
	copyResponse(w, rec)
}

func (h *Handler) referrerDir(repo, subject string) string {
	return filepath.Join(h.root, "referrers", filepath.FromSlash(repo), "_subjects", strings.Replace(subject, ":", "-", 1))
}

func (h *Handler) backrefPath(repo, digest string) string {
	return filepath.Join(h.root, "referrers", filepath.FromSlash(repo), "_manifests", strings.Replace(digest, ":", "-", 1))
}

func (h *Handler) addReferrer(repo string, e referrer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	dir := h.referrerDir(repo, e.Subject)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, strings.Replace(e.Digest, ":", "-", 1)+".json"), b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(h.backrefPath(repo, e.Digest)), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(h.backrefPath(repo, e.Digest), []byte(e.Subject))
}

func (h *Handler) forgetReferrer(repo, digest string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	subject, err := os.ReadFile(h.backrefPath(repo, digest))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(h.referrerDir(repo, string(subject)), strings.Replace(digest, ":", "-", 1)+".json")); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.Remove(h.backrefPath(repo, digest))
}

// referrers answers GET /v2/<name>/referrers/<digest>[?artifactType=...]
// with an image index of the manifests whose subject is digest.
func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, repo, subject string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "the operation is unsupported")
		return
	}
	if err := checkName(repo); err != nil {
		writeError(w, err.status, err.code, err.msg)
		return
	}
	if !validDigest(subject) {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("%q is not a digest", subject))
		return
	}
	filter := r.URL.Query().Get("artifactType")
	h.mu.Lock()
	entries, _ := os.ReadDir(h.referrerDir(repo, subject))
	list := []referrer{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(h.referrerDir(repo, subject), e.Name()))
		if err != nil {
			continue
		}
		var ref referrer
		if json.Unmarshal(b, &ref) != nil {
			continue
		}
		if filter != "" && ref.ArtifactType != filter {
			continue
		}
		list = append(list, ref)
	}
	h.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Digest < list[j].Digest })
	b, _ := json.Marshal(struct {
		SchemaVersion int        `json:"schemaVersion"`
		MediaType     string     `json:"mediaType"`
		Manifests     []referrer `json:"manifests"`
	}{2, "application/vnd.oci.image.index.v1+json", list})
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}

func secret(p string) (string, error) {
	if b, err := os.ReadFile(p); err == nil && len(b) >= 32 {
		return string(b), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("registry secret: %w", err)
	}
	s := hex.EncodeToString(buf)
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		return "", fmt.Errorf("registry secret: %w", err)
	}
	return s, nil
}

func writeFileAtomic(p string, b []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// load replays the stored manifests into the in-memory registry: by digest
// first (images before the indexes that list them), then the tags.

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
