package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/runview"
	"github.com/gantry-ci/gantry/internal/store"
)

// logPoll is how often a log stream looks for new lines, as
// `gantry logs -f` does.
const logPoll = 250 * time.Millisecond

// sseBatch is how many lines a log stream reads from the store at once.
const sseBatch = 1000

// keepAlive is how long a log stream stays silent before it sends an
// SSE comment, so proxies keep the connection.
const keepAlive = 15 * time.Second

// logStep reads ?stage= and ?step= (both or neither) and checks that the
// run has that step.
func (a *API) logStep(w http.ResponseWriter, r *http.Request, runID int64) (stage, step string, ok bool) {
	q := r.URL.Query()
	stage, step = q.Get("stage"), q.Get("step")
	if (stage == "") != (step == "") {
		badRequest(w, "query parameters stage and step: give both (one step's log) or neither (the whole run's), not only %s", map[bool]string{true: "stage", false: "step"}[stage != ""])
		return "", "", false
	}
	if stage == "" {
		return "", "", true
	}
	steps, err := a.runs.Store.Steps(r.Context(), runID)
	if err != nil {
		a.writeError(w, r, fmt.Sprintf("steps of run %d", runID), err)
		return "", "", false
	}
	for _, s := range steps {
		if s.Stage == stage && s.Name == step {
			return stage, step, true
		}
	}
	a.writeError(w, r, "", fmt.Errorf("run %d has no step %s/%s: %w", runID, stage, step, store.ErrNotFound))
	return "", "", false
}

// getRunLogs answers a run's log, or one step's, as a page of lines read
// a page at a time from the store: ?after= and ?limit= (default
// maxLimit) range it. A step's log is in line order, and after is a line
// number; the whole run's is in the order its lines were appended (as
// the stream sends them), and after is the cursor of the previous page's
// next.
func (a *API) getRunLogs(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	stage, step, ok := a.logStep(w, r, run.ID)
	if !ok {
		return
	}
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			badRequest(w, "query parameter after: want a line number of one step's log, or the next of a page of the whole run's (0 or more), not %q", v)
			return
		}
		after = n
	}
	limit := maxLimit
	if q.Get("limit") != "" {
		if limit, ok = pageLimit(w, r); !ok {
			return
		}
	}
	if stage == "" {
		lines, next, err := a.runs.Store.LogsAfterLimit(r.Context(), run.ID, "", "", after, limit)
		if err != nil {
			a.writeError(w, r, fmt.Sprintf("logs of run %d", run.ID), err)
			return
		}
		page := logPage(lines, false)
		if len(lines) == limit {
			// More may follow: a full page's next is the cursor after it.
			page.Next = strconv.FormatInt(next, 10)
		}
		writeJSON(w, http.StatusOK, page)
		return
	}
	lines, more, err := a.runs.Store.StepLogPage(r.Context(), run.ID, stage, step, after, limit)
	if err != nil {
		a.writeError(w, r, fmt.Sprintf("logs of run %d", run.ID), err)
		return
	}
	writeJSON(w, http.StatusOK, logPage(lines, more))
}

// logPage is the answer of lines; with more, next is the last line's
// number.
func logPage(lines []store.LogLine, more bool) Page[runview.LogLine] {
	page := Page[runview.LogLine]{Items: make([]runview.LogLine, 0, len(lines))}
	for _, l := range lines {
		page.Items = append(page.Items, runview.NewLogLine(l))
	}
	if more && len(lines) > 0 {
		page.Next = strconv.FormatInt(lines[len(lines)-1].Seq, 10)
	}
	return page
}

// LogEnd is the data of the "end" event that closes a log stream.
type LogEnd struct {
	// Status is the run's status (the step's, when one step is followed).
	Status store.Status `json:"status"`
}

// streamRunLogs follows a run's log, or one step's, as Server-Sent
// Events: each line is a "line" event whose id is its cursor; a client
// that reconnects with Last-Event-ID (or ?after=CURSOR) gets the lines
// after it. The stream ends with an "end" event once the run ends or
// waits for approval (the step ends, when one step is followed), when
// the client goes, or when the server stops.
func (a *API) streamRunLogs(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	stage, step, ok := a.logStep(w, r, run.ID)
	if !ok {
		return
	}
	var cursor int64
	last := r.Header.Get("Last-Event-ID")
	what := "header Last-Event-ID"
	if last == "" {
		last, what = r.URL.Query().Get("after"), "query parameter after"
	}
	if last != "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			badRequest(w, "%s: want the id of the last event received, not %q", what, last)
			return
		}
		cursor = n
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.stopping, cancel)
	defer stop()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	st := a.runs.Store
	// drain sends the lines after cursor, read sseBatch lines at a time,
	// so a long log never sits whole in memory.
	drain := func() error {
		for {
			lines, next, err := st.LogsAfterLimit(ctx, run.ID, stage, step, cursor, sseBatch)
			if err != nil {
				return err
			}
			cursor = next
			for _, l := range lines {
				b, err := json.Marshal(runview.NewLogLine(l))
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "id: %d\nevent: line\ndata: %s\n\n", l.Cursor, b); err != nil {
					return err
				}
			}
			if len(lines) > 0 {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
			if len(lines) < sseBatch {
				return nil
			}
		}
	}
	quiet := time.Now()
	for {
		if err := drain(); err != nil {
			a.endSSE(w, rc, ctx, run.ID, err)
			return
		}
		status, done, err := a.followedStatus(ctx, run.ID, stage, step)
		if err != nil {
			a.endSSE(w, rc, ctx, run.ID, err)
			return
		}
		if done {
			if err := drain(); err != nil { // lines flushed just before the end
				a.endSSE(w, rc, ctx, run.ID, err)
				return
			}
			b, _ := json.Marshal(LogEnd{Status: status})
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
			_ = rc.Flush()
			return
		}
		if time.Since(quiet) > keepAlive {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			quiet = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(logPoll):
		}
	}
}

// followedStatus reports the status of what a log stream follows and
// whether it is over: the run ended or waits for approval, or the
// followed step ended.
func (a *API) followedStatus(ctx context.Context, runID int64, stage, step string) (store.Status, bool, error) {
	run, err := a.runs.Store.GetRun(ctx, runID)
	if err != nil {
		return "", false, err
	}
	runOver := run.Status.Done() || run.Status == store.StatusWaiting
	if stage == "" {
		return run.Status, runOver, nil
	}
	steps, err := a.runs.Store.Steps(ctx, runID)
	if err != nil {
		return "", false, err
	}
	for _, s := range steps {
		if s.Stage == stage && s.Name == step {
			if s.Status.Done() || runOver {
				return s.Status, true, nil
			}
			return s.Status, false, nil
		}
	}
	return run.Status, runOver, nil
}

// endSSE ends a log stream that failed with an "error" event (unless
// the client went or the server stops).
func (a *API) endSSE(w http.ResponseWriter, rc *http.ResponseController, ctx context.Context, runID int64, err error) {
	if ctx.Err() != nil {
		return
	}
	a.logger.Error("log stream failed", "run", runID, "err", err)
	code, _ := classify(err)
	b, _ := json.Marshal(errorBody{Code: code, Message: err.Error()})
	fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
	_ = rc.Flush()
}

// safeMediaType returns mt when it is a well-formed media type that a
// browser will not run, else application/octet-stream. Steps set media
// types; their content comes from the repository under test.
func safeMediaType(mt string) string {
	base, params, err := mime.ParseMediaType(mt)
	if err != nil {
		return "application/octet-stream"
	}
	switch {
	case base == "text/html", base == "application/xhtml+xml", base == "image/svg+xml",
		strings.Contains(base, "javascript"), strings.HasSuffix(base, "+xml") && strings.Contains(base, "xhtml"):
		// Served as an attachment anyway; plain text keeps it inert.
		return "text/plain; charset=utf-8"
	}
	return mime.FormatMediaType(base, params)
}

// getArtifact answers one artifact blob of a run by digest, as an
// attachment named after the artifact, with its media type and size.
// The blob is found by its digest (checked by the artifact store); the
// artifact's recorded name only names the download.
func (a *API) getArtifact(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	digest := r.PathValue("digest")
	if _, err := artifact.ParseDigest(digest); err != nil {
		badRequest(w, "path parameter digest: %v", err)
		return
	}
	arts, err := a.runs.Store.Artifacts(r.Context(), run.ID)
	if err != nil {
		a.writeError(w, r, fmt.Sprintf("artifacts of run %d", run.ID), err)
		return
	}
	var found *store.Artifact
	for i := range arts {
		if arts[i].Digest == digest {
			found = &arts[i]
			break
		}
	}
	if found == nil {
		a.writeError(w, r, "", fmt.Errorf("run %d has no artifact %s: %w", run.ID, digest, store.ErrNotFound))
		return
	}
	p, err := a.runs.Artifacts.Path(digest)
	if errors.Is(err, artifact.ErrNotFound) {
		err = fmt.Errorf("the blob of artifact %s of run %d is missing from the artifact store: %w", digest, run.ID, store.ErrNotFound)
	}
	if err != nil {
		a.writeError(w, r, "open artifact "+digest, err)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		a.writeError(w, r, "open artifact "+digest, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		a.writeError(w, r, "open artifact "+digest, err)
		return
	}
	name := path.Base(strings.ReplaceAll(found.Name, `\`, "/"))
	if name == "." || name == "/" || name == ".." {
		name = "artifact"
	}
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	if disp == "" {
		disp = "attachment"
	}
	h := w.Header()
	h.Set("Content-Type", safeMediaType(found.MediaType))
	h.Set("Content-Disposition", disp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
