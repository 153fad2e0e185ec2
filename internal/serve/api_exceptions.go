package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/policy"
)

// RiskException is one entry of the risk exceptions file of a run's
// commit.
type RiskException struct {
	ID            string `json:"id"`
	Package       string `json:"package,omitempty"`
	Justification string `json:"justification"`
	Owner         string `json:"owner"`
	// Expires is the last day the exception applies (YYYY-MM-DD).
	Expires string `json:"expires"`
	// Expired says whether that day is over now.
	Expired bool   `json:"expired"`
	File    string `json:"file"`
	Line    int    `json:"line"`
}

// commitSHA is what a recorded commit looks like.
var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// errNoCommit: the run has no commit whose file could be read.
var errNoCommit = errors.New("the run recorded no commit of its repository")

func (a *API) mountExceptions(mux *router) {
	mux.HandleFunc("GET /api/v1/runs/{id}/exceptions", a.withRuns(auth.ActionRead, a.getExceptions))
}

// getExceptions answers the risk exceptions file (.gantry/exceptions.yaml)
// of the run's commit, read with git from the repository the run
// recorded, with each exception's owner and expiry and whether it expired.
// A commit without the file has none.
func (a *API) getExceptions(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	data, err := fileAtCommit(r.Context(), run.Dir, run.SHA, policy.DefaultExceptionsFile)
	if errors.Is(err, errNoCommit) {
		writeErrorBody(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("run %d: %v", run.ID, err))
		return
	}
	if err != nil {
		a.writeError(w, r, fmt.Sprintf("read the exceptions of run %d", run.ID), err)
		return
	}
	items := []RiskException{}
	if data != nil {
		ex, err := policy.ParseExceptions(policy.DefaultExceptionsFile, data)
		if err != nil {
			writeErrorBody(w, http.StatusUnprocessableEntity, CodeInvalidRequest, fmt.Sprintf("run %d: %v", run.ID, err))
			return
		}
		now := time.Now()
		for _, e := range ex.List {
			items = append(items, RiskException{ID: e.ID, Package: e.Package, Justification: e.Justification, Owner: e.Owner,
				Expires: e.Expires.Value, Expired: !e.Until.IsZero() && !now.Before(e.Until), File: policy.DefaultExceptionsFile, Line: e.Pos.Line})
		}
	}
	writeJSON(w, http.StatusOK, Page[RiskException]{Items: items})
}

// fileAtCommit reads path at commit sha of the repository in dir with
// git (arguments, never a shell); nil when the commit has no such file.
func fileAtCommit(ctx context.Context, dir, sha, path string) ([]byte, error) {
	if dir == "" || !commitSHA.MatchString(sha) {
		return nil, errNoCommit
	}
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "cat-file", "-e", sha+"^{commit}")
	if err := cmd.Run(); err != nil {
		return nil, errNoCommit
	}
	var out, stderr bytes.Buffer
	cmd = exec.CommandContext(ctx, "git", "-C", dir, "show", sha+":"+path)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		// The commit exists: no such file in it.
		if exec.Command("git", "-C", dir, "cat-file", "-e", sha+":"+path).Run() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("git show %s:%s: %w: %s", sha[:12], path, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.Bytes(), nil
}
