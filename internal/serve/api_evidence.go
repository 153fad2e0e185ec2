package serve

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/runview"
	"github.com/gantry-ci/gantry/internal/store"
)

// evidenceRuns bounds how many runs, newest first, the evidence of a
// digest is looked for in.
const evidenceRuns = 1000

// Signing is what a sign step of a run recorded about an image digest:
// the key that signed it, the attestations made, and the verdict of each
// gate attested (pass, allowed-failure or fail).
type Signing struct {
	Run          runview.Run       `json:"run"`
	Stage        string            `json:"stage"`
	Step         string            `json:"step"`
	Signed       string            `json:"signed,omitempty"`
	Image        string            `json:"image,omitempty"`
	Key          string            `json:"key,omitempty"`
	KeyID        string            `json:"key_id,omitempty"`
	Signature    string            `json:"signature,omitempty"`
	Attestations []string          `json:"attestations"`
	Evidence     map[string]string `json:"evidence"`
	// Approvals are the run's granted approvals.
	Approvals []runview.Approval `json:"approvals"`
	// Check is what the server found in the registry now: the signature
	// by a key it trusts and the verified gate verdicts (absent when it
	// could not check; CheckError says why).
	Check      *evidence.ImageCheck `json:"check,omitempty"`
	CheckError string               `json:"check_error,omitempty"`
}

func (a *API) mountEvidence(mux *router) {
	mux.HandleFunc("GET /api/v1/evidence/{digest}", a.withRuns(auth.ActionRead, a.getEvidence))
}

// getEvidence answers what the sign steps of the recorded runs (the
// newest evidenceRuns) recorded about an image digest, newest first, and
// for each signed image what the server finds in its registry now: the
// signature checked against the keys it trusts and the attested verdicts
// (Runs.Images; `gantry verify --require` makes the same check).
func (a *API) getEvidence(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	ctx := r.Context()
	digest := r.PathValue("digest")
	if _, err := artifact.ParseDigest(digest); err != nil {
		badRequest(w, "path parameter digest: %v", err)
		return
	}
	runs, err := a.runs.Store.ListRuns(ctx, store.ListOptions{Limit: evidenceRuns})
	if err != nil {
		a.writeError(w, r, "list runs", err)
		return
	}
	items := []Signing{}
	checked := map[string]imageResult{}
	for _, run := range runs {
		steps, err := a.runs.Store.Steps(ctx, run.ID)
		if err != nil {
			a.writeError(w, r, fmt.Sprintf("steps of run %d", run.ID), err)
			return
		}
		for _, s := range steps {
			if s.Kind != "sign" || s.Status != store.StatusPassed || s.Outputs["digest"] != digest {
				continue
			}
			sg := Signing{Run: runview.NewRun(run), Stage: s.Stage, Step: s.Name, Attestations: []string{}, Evidence: map[string]string{}, Approvals: []runview.Approval{}}
			if !s.Finished.IsZero() {
				sg.Signed = s.Finished.UTC().Format("2006-01-02T15:04:05Z07:00")
			}
			sg.Image, _ = s.Outputs["image"].(string)
			sg.Key, _ = s.Outputs["key"].(string)
			sg.KeyID, _ = s.Outputs["key_id"].(string)
			sg.Signature, _ = s.Outputs["signature"].(string)
			if list, ok := s.Outputs["attestations"].([]any); ok {
				for _, v := range list {
					if t, ok := v.(string); ok {
						sg.Attestations = append(sg.Attestations, t)
					}
				}
			}
			sort.Strings(sg.Attestations)
			if m, ok := s.Outputs["evidence"].(map[string]any); ok {
				for gate, v := range m {
					if verdict, ok := v.(string); ok {
						sg.Evidence[gate] = verdict
					}
				}
			}
			aps, err := runview.LoadApprovals(ctx, a.runs.Store, run.ID)
			if err != nil {
				a.writeError(w, r, fmt.Sprintf("approvals of run %d", run.ID), err)
				return
			}
			for _, ap := range aps {
				if ap.Status == store.ApprovalApproved {
					sg.Approvals = append(sg.Approvals, ap)
				}
			}
			a.checkImage(ctx, &sg, digest, checked)
			items = append(items, sg)
		}
	}
	writeJSON(w, http.StatusOK, Page[Signing]{Items: items})
}

// imageResult is the check of one image, kept for the other records of
// the same image in one answer.
type imageResult struct {
	check *evidence.ImageCheck
	err   string
}

// checkImage sets sg.Check from the registry (once per image per answer).
// The image must be the digest asked about: a record whose image names
// another digest is not checked.
func (a *API) checkImage(ctx context.Context, sg *Signing, digest string, checked map[string]imageResult) {
	if a.runs.Images == nil {
		sg.CheckError = "the server checks no images (no registry)"
		return
	}
	_, d, ok := strings.Cut(sg.Image, "@")
	if !ok || d != digest {
		sg.CheckError = fmt.Sprintf("the recorded image %q is not the digest %s", sg.Image, digest)
		return
	}
	res, ok := checked[sg.Image]
	if !ok {
		c, err := a.runs.Images.CheckImage(ctx, sg.Image)
		if err != nil {
			res.err = err.Error()
		} else {
			res.check = &c
		}
		checked[sg.Image] = res
	}
	sg.Check, sg.CheckError = res.check, res.err
}
