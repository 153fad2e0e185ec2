// Package webhook receives GitHub and Gitea webhook deliveries (push and
// pull_request) and queues the runs they trigger.
//
// A delivery is authenticated by its HMAC-SHA256 signature over the raw
// body (GitHub's X-Hub-Signature-256, Gitea's X-Gitea-Signature), compared
// in constant time; its delivery id is remembered in the store so that a
// replay is refused. Everything in a payload is written by whoever can
// push: branch names, SHAs and URLs are validated (queue.CheckBranch,
// CheckSHA), the repository must be one the server is configured for
// and the commit is fetched from the configured address, never from a
// URL in the payload. Whether a delivery triggers a run is decided by
// the on: block of the pipeline file on the repository's default branch,
// so a branch cannot widen its own triggers. Logs never carry the
// payload. See docs/webhooks.md.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/queue"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
)

// DefaultMaxBody bounds a delivery's body (GitHub caps payloads at 25 MB;
// push payloads of ordinary pushes are far smaller).
const DefaultMaxBody = 5 << 20

// Repository is a repository the server builds.
type Repository struct {
	// URL is where commits are fetched from (https://, ssh://,
	// user@host:path, or a local path when the fetcher allows it). A
	// delivery's repository must match it (its clone, ssh or html URL).
	URL string
	// DefaultBranch holds the pipeline file whose on: decides (default
	// "main").
	DefaultBranch string
}

// Deliveries remembers delivery ids (the store).
type Deliveries interface {
	RecordDelivery(ctx context.Context, forge, id, event string) error
	LinkDelivery(ctx context.Context, forge, id, queueID string) error
}

// Submitter queues runs (the queue).
type Submitter interface {
	Submit(ctx context.Context, r queue.Request) (store.QueueItem, error)
}

// Pipelines reads a file of a repository's branch (the queue's Fetcher).
type Pipelines interface {
	DefaultPipeline(ctx context.Context, repo, branch, file string) ([]byte, error)
}

// Config configures a Handler.
type Config struct {
	// Secrets are the accepted HMAC keys (several during a rotation).
	Secrets      [][]byte
	Repositories []Repository
	Deliveries   Deliveries
	Queue        Submitter
	Pipelines    Pipelines
	// MaxBody bounds a delivery's body (default DefaultMaxBody).
	MaxBody int64
	Logger  *slog.Logger
}

// ReadSecrets reads the webhook secret file: one secret per non-empty
// line (two during a rotation). The file must not be readable by group
// or others.
func ReadSecrets(path string) ([][]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secret file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("webhook secret file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secret file: %w", err)
	}
	var out [][]byte
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, []byte(l))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("webhook secret file %s is empty", path)
	}
	return out, nil
}

// Handler serves POST /webhooks/github and POST /webhooks/gitea.
type Handler struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns its handler.
func New(cfg Config) (*Handler, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("webhooks: no secret (--webhook-secret-file)")
	}
	for _, s := range cfg.Secrets {
		if len(s) < 16 {
			return nil, errors.New("webhooks: a secret is shorter than 16 bytes")
		}
	}
	if len(cfg.Repositories) == 0 {
		return nil, errors.New("webhooks: no repository configured")
	}
	for i, r := range cfg.Repositories {
		if r.DefaultBranch == "" {
			cfg.Repositories[i].DefaultBranch = "main"
		}
		if err := queue.CheckBranch(cfg.Repositories[i].DefaultBranch); err != nil {
			return nil, fmt.Errorf("webhooks: default branch of %s: %w", r.URL, err)
		}
	}
	if cfg.Deliveries == nil || cfg.Queue == nil || cfg.Pipelines == nil {
		return nil, errors.New("webhooks: needs the store, the queue and a fetcher")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, log: cfg.Logger}, nil
}

// forge is what differs between GitHub and Gitea.
type forge struct {
	name                                   string
	eventHeader, deliveryHeader, sigHeader string
	sigPrefix                              string
}

var forges = map[string]forge{
	"github": {name: "github", eventHeader: "X-GitHub-Event", deliveryHeader: "X-GitHub-Delivery", sigHeader: "X-Hub-Signature-256", sigPrefix: "sha256="},
	"gitea":  {name: "gitea", eventHeader: "X-Gitea-Event", deliveryHeader: "X-Gitea-Delivery", sigHeader: "X-Gitea-Signature"},
}

// Response is the JSON body of an accepted delivery.
type Response struct {
	// Status is "queued", "ignored" or "pong" (errors have the serve
	// API's error shape).
	Status string `json:"status"`
	// ID is the queue item of a queued run.
	ID string `json:"id,omitempty"`
	// Reason says why a delivery was ignored.
	Reason string `json:"reason,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/webhooks/")
	f, known := forges[name]
	if !ok || !known {
		writeError(w, http.StatusNotFound, "not_found", "no webhook endpoint "+r.URL.Path+" (POST /webhooks/github or /webhooks/gitea)")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "webhooks are POSTed")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		h.log.Warn("webhook refused: body over the limit", "forge", f.name, "limit", h.cfg.MaxBody)
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("delivery body over %d bytes", h.cfg.MaxBody))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad_request", "read the delivery body: "+err.Error())
		return
	}
	if !h.verify(f, r.Header.Get(f.sigHeader), body) {
		h.log.Warn("webhook refused: missing or wrong signature", "forge", f.name, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "unauthenticated", "missing or wrong "+f.sigHeader+" signature")
		return
	}
	event := r.Header.Get(f.eventHeader)
	delivery := r.Header.Get(f.deliveryHeader)
	if delivery == "" || len(delivery) > 128 || strings.ContainsFunc(delivery, func(c rune) bool { return c <= 0x20 || c >= 0x7f }) {
		writeError(w, http.StatusBadRequest, "bad_request", "missing or malformed "+f.deliveryHeader+" header")
		return
	}
	log := h.log.With("forge", f.name, "event", safeToken(event), "delivery", delivery)
	if event == "ping" {
		writeJSON(w, http.StatusOK, Response{Status: "pong"})
		return
	}
	ev, err := parse(event, body)
	if err != nil {
		var ign ignoredError
		if errors.As(err, &ign) {
			log.Info("webhook ignored", "reason", ign.reason)
			writeJSON(w, http.StatusOK, Response{Status: "ignored", Reason: ign.reason})
			return
		}
		log.Warn("webhook refused: malformed payload", "err", err)
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	repo, ok := h.repository(ev.repoURLs)
	if !ok {
		log.Warn("webhook refused: repository not configured")
		writeError(w, http.StatusUnprocessableEntity, "unknown_repository", "the delivery's repository is not one this server builds")
		return
	}
	if err := h.cfg.Deliveries.RecordDelivery(r.Context(), f.name, delivery, event); err != nil {
		if errors.Is(err, store.ErrDeliveryReplayed) {
			log.Warn("webhook refused: delivery replayed")
			writeError(w, http.StatusConflict, "replayed", "delivery "+delivery+" was already received")
			return
		}
		log.Error("record a webhook delivery", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "record the delivery")
		return
	}
	res, status, code := h.trigger(r.Context(), log, repo, ev)
	if code != "" {
		writeError(w, status, code, res.Reason)
		return
	}
	if res.ID != "" {
		if err := h.cfg.Deliveries.LinkDelivery(r.Context(), f.name, delivery, res.ID); err != nil {
			log.Warn("link a webhook delivery to its run", "err", err)
		}
	}
	writeJSON(w, status, res)
}

// trigger decides from the default branch's on: and queues the run.
// A non-empty code is an error answer whose message is the Reason.
func (h *Handler) trigger(ctx context.Context, log *slog.Logger, repo Repository, ev event) (Response, int, string) {
	src, err := h.cfg.Pipelines.DefaultPipeline(ctx, repo.URL, repo.DefaultBranch, spec.DefaultPath)
	if errors.Is(err, queue.ErrNoPipeline) {
		return Response{Status: "ignored", Reason: "the default branch " + repo.DefaultBranch + " has no " + spec.DefaultPath}, http.StatusOK, ""
	}
	if err != nil {
		log.Error("read the default branch's pipeline", "repo", repo.URL, "err", err)
		return Response{Status: "error", Reason: "could not read the default branch's pipeline file"}, http.StatusBadGateway, "fetch_failed"
	}
	var doc struct {
		On spec.Triggers `yaml:"on"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		log.Warn("the default branch's pipeline file does not parse", "repo", repo.URL, "err", err)
		return Response{Status: "error", Reason: "the default branch's " + spec.DefaultPath + " does not parse: " + err.Error()}, http.StatusUnprocessableEntity, "bad_pipeline"
	}
	if !doc.On.Match(ev.kind, ev.branch, ev.base) {
		log.Info("webhook ignored: not triggered by on:", "sha", ev.sha)
		return Response{Status: "ignored", Reason: "not triggered by on: of " + spec.DefaultPath + " on " + repo.DefaultBranch}, http.StatusOK, ""
	}
	it, err := h.cfg.Queue.Submit(ctx, queue.Request{Repo: repo.URL, Event: ev.kind, Branch: ev.branch, Base: ev.base, SHA: ev.sha,
		Trigger: "webhook", Actor: ev.actor, CancelPrevious: doc.On.CancelsPrevious(), Concurrency: doc.On.Limit()})
	if errors.Is(err, queue.ErrInvalid) {
		log.Warn("webhook refused: invalid value", "err", err)
		return Response{Status: "error", Reason: err.Error()}, http.StatusBadRequest, "bad_request"
	}
	if err != nil {
		log.Error("queue a run", "err", err)
		return Response{Status: "error", Reason: "could not queue the run"}, http.StatusInternalServerError, "internal"
	}
	log.Info("run queued", "item", it.ID, "sha", ev.sha)
	return Response{Status: "queued", ID: it.ID}, http.StatusAccepted, ""
}

func (h *Handler) repository(urls []string) (Repository, bool) {
	for _, r := range h.cfg.Repositories {
		for _, u := range urls {
			if u != "" && queue.SameRepo(u, r.URL) {
				return r, true
			}
		}
	}
	return Repository{}, false
}

// verify checks sig (hex HMAC-SHA256 of body, with the forge's prefix)
// against every secret in constant time.
func (h *Handler) verify(f forge, sig string, body []byte) bool {
	hexSig, ok := strings.CutPrefix(sig, f.sigPrefix)
	if !ok || hexSig == "" {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	match := false
	for _, s := range h.cfg.Secrets {
		m := hmac.New(sha256.New, s)
		m.Write(body)
		if hmac.Equal(got, m.Sum(nil)) {
			match = true
		}
	}
	return match
}

// Sign returns the hex HMAC-SHA256 of body with secret, as forges sign
// deliveries (GitHub prefixes it with "sha256=").
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// event is what gantry takes from a payload, validated.
type event struct {
	kind, branch, base, sha, actor string
	repoURLs                       []string
}

type ignoredError struct{ reason string }

func (e ignoredError) Error() string { return e.reason }

type repoJSON struct {
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
	HTMLURL  string `json:"html_url"`
}

func (r repoJSON) urls() []string { return []string{r.CloneURL, r.SSHURL, r.HTMLURL} }

type pushJSON struct {
	Ref        string    `json:"ref"`
	After      string    `json:"after"`
	Deleted    bool      `json:"deleted"`
	Repository *repoJSON `json:"repository"`
	Pusher     struct {
		Name     string `json:"name"`
		Username string `json:"username"`
	} `json:"pusher"`
}

type prJSON struct {
	Action      string `json:"action"`
	PullRequest *struct {
		Head struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"head"`
		Base struct {
			Ref  string    `json:"ref"`
			Repo *repoJSON `json:"repo"`
		} `json:"base"`
		User struct {
			Login string `json:"login"`
		} `json:"user"`
	} `json:"pull_request"`
	Repository *repoJSON `json:"repository"`
}

// zeroSHA is the "after" of a deleted branch.
func zeroSHA(s string) bool { return s != "" && strings.Trim(s, "0") == "" }

// parse decodes and validates a push or pull_request payload. Other
// events and actions are ignoredError.
func parse(kind string, body []byte) (event, error) {
	dec := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(body))
		if err := d.Decode(v); err != nil {
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			switch {
			case errors.As(err, &se):
				return fmt.Errorf("malformed JSON at byte %d: %v", se.Offset, se)
			case errors.As(err, &te):
				return fmt.Errorf("malformed JSON: field %s: want %s, got %s", te.Field, te.Type, te.Value)
			}
			return fmt.Errorf("malformed JSON: %v", err)
		}
		return nil
	}
	switch kind {
	case "push":
		var p pushJSON
		if err := dec(&p); err != nil {
			return event{}, err
		}
		if p.Repository == nil {
			return event{}, errors.New("push payload has no repository")
		}
		if p.Deleted || zeroSHA(p.After) {
			return event{}, ignoredError{"a branch deletion runs nothing"}
		}
		if !strings.HasPrefix(p.Ref, "refs/heads/") {
			return event{}, ignoredError{"not a branch push (tags run nothing)"}
		}
		branch, err := queue.BranchOfRef(p.Ref)
		if err != nil {
			return event{}, fmt.Errorf("push payload: ref: %w", err)
		}
		if err := queue.CheckSHA(p.After); err != nil {
			return event{}, fmt.Errorf("push payload: after: %w", err)
		}
		actor := p.Pusher.Name
		if actor == "" {
			actor = p.Pusher.Username
		}
		return event{kind: "push", branch: branch, sha: p.After, actor: safeToken(actor), repoURLs: p.Repository.urls()}, nil
	case "pull_request":
		var p prJSON
		if err := dec(&p); err != nil {
			return event{}, err
		}
		switch p.Action {
		case "opened", "synchronize", "synchronized", "reopened":
		default:
			return event{}, ignoredError{"pull_request action " + safeToken(p.Action) + " runs nothing (opened, synchronize, reopened do)"}
		}
		pr := p.PullRequest
		if pr == nil {
			return event{}, errors.New("pull_request payload has no pull_request")
		}
		if err := queue.CheckBranch(pr.Head.Ref); err != nil {
			return event{}, fmt.Errorf("pull_request payload: head.ref: %w", err)
		}
		if err := queue.CheckBranch(pr.Base.Ref); err != nil {
			return event{}, fmt.Errorf("pull_request payload: base.ref: %w", err)
		}
		if err := queue.CheckSHA(pr.Head.SHA); err != nil {
			return event{}, fmt.Errorf("pull_request payload: head.sha: %w", err)
		}
		// The base repository is the configured one; the head may be a
		// fork, whose commit the base repository serves too
		// (refs/pull/N/head).
		var urls []string
		if pr.Base.Repo != nil {
			urls = pr.Base.Repo.urls()
		} else if p.Repository != nil {
			urls = p.Repository.urls()
		}
		if urls == nil {
			return event{}, errors.New("pull_request payload has no base repository")
		}
		return event{kind: "pull_request", branch: pr.Head.Ref, base: pr.Base.Ref, sha: pr.Head.SHA, actor: safeToken(pr.User.Login), repoURLs: urls}, nil
	}
	return event{}, ignoredError{"event " + safeToken(kind) + " runs nothing (push and pull_request do)"}
}

// safeToken keeps a short printable token (a login, an event name) for
// logs and messages; anything else becomes "?".
func safeToken(s string) string {
	if len(s) > 64 {
		return "?"
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "?"
		}
	}
	return s
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers in the serve API's error shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
