package serve

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/vuln"
)

// maxReport bounds the size of an artifact the API parses into a report.
const maxReport = 64 << 20

// ErrReportUnreadable is what a report endpoint answers (422) when an
// artifact it reads is not what its name or media type says.
var ErrReportUnreadable = errors.New("a report artifact of the run cannot be read")

// Report artifacts: what the step kinds write (docs/steps/*.md).
const (
	mediaSARIF     = "application/sarif+json"
	mediaCycloneDX = "application/vnd.cyclonedx+json"
	vulnReportName = "vuln-report.json"
	junitName      = "junit.xml"
)

func (a *API) mountReports(mux *router) {
	mux.HandleFunc("GET /api/v1/runs/{id}/tests", a.withRuns(auth.ActionRead, a.getTests))
	mux.HandleFunc("GET /api/v1/runs/{id}/coverage", a.withRuns(auth.ActionRead, a.getCoverage))
	mux.HandleFunc("GET /api/v1/runs/{id}/vulnerabilities", a.withRuns(auth.ActionRead, a.getVulnerabilities))
	mux.HandleFunc("GET /api/v1/runs/{id}/sbom", a.withRuns(auth.ActionRead, a.getSBOM))
	mux.HandleFunc("GET /api/v1/runs/{id}/sarif", a.withRuns(auth.ActionRead, a.getSARIF))
}

// reportArtifacts reads the run's artifacts that match, calling parse
// with each one's content (bounded by maxReport).
func (a *API) reportArtifacts(ctx context.Context, runID int64, match func(store.Artifact) bool, parse func(store.Artifact, []byte) error) error {
	arts, err := a.runs.Store.Artifacts(ctx, runID)
	if err != nil {
		return err
	}
	for _, art := range arts {
		if !match(art) {
			continue
		}
		rc, err := a.runs.Artifacts.Open(art.Digest)
		if err != nil {
			return fmt.Errorf("artifact %s of %s/%s: %w", art.Name, art.Stage, art.Step, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxReport+1))
		rc.Close()
		if err != nil {
			return fmt.Errorf("read artifact %s of %s/%s: %w", art.Name, art.Stage, art.Step, err)
		}
		if len(b) > maxReport {
			return fmt.Errorf("artifact %s of %s/%s: larger than %d bytes: %w", art.Name, art.Stage, art.Step, maxReport, ErrReportUnreadable)
		}
		if err := parse(art, b); err != nil {
			return fmt.Errorf("artifact %s of %s/%s: %v: %w", art.Name, art.Stage, art.Step, err, ErrReportUnreadable)
		}
	}
	return nil
}

// replyReport answers the page of a report, or its error (422 for an
// unreadable artifact).
func replyReport[T any](a *API, w http.ResponseWriter, r *http.Request, what string, items []T, err error) {
	if errors.Is(err, ErrReportUnreadable) {
		writeErrorBody(w, http.StatusUnprocessableEntity, CodeInvalidRequest, err.Error())
		return
	}
	if err != nil {
		a.writeError(w, r, what, err)
		return
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, Page[T]{Items: items})
}

// TestReport is the JUnit result of one step.
type TestReport struct {
	Stage    string       `json:"stage"`
	Step     string       `json:"step"`
	Artifact string       `json:"artifact"`
	Tests    int          `json:"tests"`
	Failures int          `json:"failures"`
	Errors   int          `json:"errors"`
	Skipped  int          `json:"skipped"`
	Time     float64      `json:"time_seconds"`
	Failed   []TestFailed `json:"failed"`
}

// TestFailed is a test case that failed or errored.
type TestFailed struct {
	Suite   string `json:"suite"`
	Name    string `json:"name"`
	Message string `json:"message,omitempty"`
}

type junitCase struct {
	Name      string    `xml:"name,attr"`
	ClassName string    `xml:"classname,attr"`
	Time      float64   `xml:"time,attr"`
	Failure   *junitMsg `xml:"failure"`
	Error     *junitMsg `xml:"error"`
	Skipped   *junitMsg `xml:"skipped"`
}

type junitMsg struct {
	Message string `xml:"message,attr"`
}

type junitSuite struct {
	Name   string       `xml:"name,attr"`
	Cases  []junitCase  `xml:"testcase"`
	Suites []junitSuite `xml:"testsuite"`
}

// parseJUnit counts the cases of a JUnit XML document (<testsuites> or a
// single <testsuite>).
func parseJUnit(b []byte, rep *TestReport) error {
	var root struct {
		XMLName xml.Name
		junitSuite
	}
	if err := xml.Unmarshal(b, &root); err != nil {
		return err
	}
	switch root.XMLName.Local {
	case "testsuites", "testsuite":
	default:
		return fmt.Errorf("root element <%s>, want <testsuites> or <testsuite>", root.XMLName.Local)
	}
	var walk func(s junitSuite, depth int) error
	walk = func(s junitSuite, depth int) error {
		if depth > 32 {
			return errors.New("test suites nested deeper than 32")
		}
		for _, c := range s.Cases {
			rep.Tests++
			rep.Time += c.Time
			suite := s.Name
			if suite == "" {
				suite = c.ClassName
			}
			switch {
			case c.Failure != nil:
				rep.Failures++
				rep.Failed = append(rep.Failed, TestFailed{Suite: suite, Name: c.Name, Message: c.Failure.Message})
			case c.Error != nil:
				rep.Errors++
				rep.Failed = append(rep.Failed, TestFailed{Suite: suite, Name: c.Name, Message: c.Error.Message})
			case c.Skipped != nil:
				rep.Skipped++
			}
		}
		for _, sub := range s.Suites {
			if err := walk(sub, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root.junitSuite, 0)
}

func (a *API) getTests(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	var items []TestReport
	err := a.reportArtifacts(r.Context(), run.ID, func(art store.Artifact) bool {
		return art.Name == junitName || strings.HasSuffix(art.Name, ".junit.xml")
	}, func(art store.Artifact, b []byte) error {
		rep := TestReport{Stage: art.Stage, Step: art.Step, Artifact: art.Digest, Failed: []TestFailed{}}
		if err := parseJUnit(b, &rep); err != nil {
			return err
		}
		items = append(items, rep)
		return nil
	})
	replyReport(a, w, r, fmt.Sprintf("test results of run %d", run.ID), items, err)
}

// Coverage is the coverage a step measured (its "coverage" output).
type Coverage struct {
	Stage    string  `json:"stage"`
	Step     string  `json:"step"`
	Coverage float64 `json:"coverage"`
	// Artifact is the digest of the step's coverage profile, if any.
	Artifact string `json:"artifact,omitempty"`
}

func (a *API) getCoverage(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	steps, err := a.runs.Store.Steps(ctx, run.ID)
	if err != nil {
		a.writeError(w, r, "steps", err)
		return
	}
	arts, err := a.runs.Store.Artifacts(ctx, run.ID)
	if err != nil {
		a.writeError(w, r, "artifacts", err)
		return
	}
	items := []Coverage{}
	for _, s := range steps {
		v, ok := s.Outputs["coverage"].(float64)
		if !ok {
			continue
		}
		c := Coverage{Stage: s.Stage, Step: s.Name, Coverage: v}
		for _, art := range arts {
			if art.Stage == s.Stage && art.Step == s.Name && art.Name == "coverage.out" {
				c.Artifact = art.Digest
			}
		}
		items = append(items, c)
	}
	writeJSON(w, http.StatusOK, Page[Coverage]{Items: items})
}

// VulnFinding is one vulnerability a scan step found, with the gate's
// verdict on it and the risk exception (owner, expiry) it matched.
type VulnFinding struct {
	Stage   string       `json:"stage"`
	Step    string       `json:"step"`
	Scanner string       `json:"scanner"`
	Target  string       `json:"target"`
	Digest  string       `json:"digest,omitempty"`
	Finding vuln.Finding `json:"finding"`
}

func (a *API) getVulnerabilities(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	var items []VulnFinding
	err := a.reportArtifacts(r.Context(), run.ID, func(art store.Artifact) bool { return art.Name == vulnReportName },
		func(art store.Artifact, b []byte) error {
			var rep vuln.Report
			if err := json.Unmarshal(b, &rep); err != nil {
				return err
			}
			if rep.Verdict == nil {
				return nil
			}
			for _, f := range rep.Findings {
				items = append(items, VulnFinding{Stage: art.Stage, Step: art.Step, Scanner: rep.Scanner, Target: rep.Target, Digest: rep.Digest, Finding: f})
			}
			return nil
		})
	replyReport(a, w, r, fmt.Sprintf("vulnerabilities of run %d", run.ID), items, err)
}

// Component is one component of a CycloneDX SBOM a step produced.
type Component struct {
	Stage    string   `json:"stage"`
	Step     string   `json:"step"`
	Type     string   `json:"type"`
	Name     string   `json:"name"`
	Version  string   `json:"version,omitempty"`
	PURL     string   `json:"purl,omitempty"`
	Licenses []string `json:"licenses"`
}

func (a *API) getSBOM(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	var items []Component
	err := a.reportArtifacts(r.Context(), run.ID, func(art store.Artifact) bool {
		return strings.HasPrefix(art.MediaType, mediaCycloneDX)
	}, func(art store.Artifact, b []byte) error {
		var doc struct {
			Components []struct {
				Type     string `json:"type"`
				Name     string `json:"name"`
				Version  string `json:"version"`
				PURL     string `json:"purl"`
				Licenses []struct {
					License *struct {
						ID   string `json:"id"`
						Name string `json:"name"`
					} `json:"license"`
					Expression string `json:"expression"`
				} `json:"licenses"`
			} `json:"components"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return err
		}
		for _, c := range doc.Components {
			comp := Component{Stage: art.Stage, Step: art.Step, Type: c.Type, Name: c.Name, Version: c.Version, PURL: c.PURL, Licenses: []string{}}
			for _, l := range c.Licenses {
				switch {
				case l.Expression != "":
					comp.Licenses = append(comp.Licenses, l.Expression)
				case l.License != nil && l.License.ID != "":
					comp.Licenses = append(comp.Licenses, l.License.ID)
				case l.License != nil && l.License.Name != "":
					comp.Licenses = append(comp.Licenses, l.License.Name)
				}
			}
			items = append(items, comp)
		}
		return nil
	})
	replyReport(a, w, r, fmt.Sprintf("SBOM of run %d", run.ID), items, err)
}

// SARIFResult is one result of a SARIF log a step produced (SAST,
// secrets, lint, vulnerability scans).
type SARIFResult struct {
	Stage   string `json:"stage"`
	Step    string `json:"step"`
	Tool    string `json:"tool"`
	Rule    string `json:"rule"`
	Level   string `json:"level"`
	Message string `json:"message"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
}

func (a *API) getSARIF(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	var items []SARIFResult
	err := a.reportArtifacts(r.Context(), run.ID, func(art store.Artifact) bool {
		return strings.HasPrefix(art.MediaType, mediaSARIF)
	}, func(art store.Artifact, b []byte) error {
		var log struct {
			Runs []struct {
				Tool struct {
					Driver struct {
						Name string `json:"name"`
					} `json:"driver"`
				} `json:"tool"`
				Results []struct {
					RuleID  string `json:"ruleId"`
					Level   string `json:"level"`
					Message struct {
						Text string `json:"text"`
					} `json:"message"`
					Locations []struct {
						Physical struct {
							Artifact struct {
								URI string `json:"uri"`
							} `json:"artifactLocation"`
							Region struct {
								StartLine int `json:"startLine"`
							} `json:"region"`
						} `json:"physicalLocation"`
					} `json:"locations"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal(b, &log); err != nil {
			return err
		}
		for _, run := range log.Runs {
			for _, res := range run.Results {
				level := res.Level
				if level == "" {
					level = "warning" // SARIF's default
				}
				item := SARIFResult{Stage: art.Stage, Step: art.Step, Tool: run.Tool.Driver.Name, Rule: res.RuleID, Level: level, Message: res.Message.Text}
				if len(res.Locations) > 0 {
					item.File, item.Line = res.Locations[0].Physical.Artifact.URI, res.Locations[0].Physical.Region.StartLine
				}
				items = append(items, item)
			}
		}
		return nil
	})
	replyReport(a, w, r, fmt.Sprintf("SARIF results of run %d", run.ID), items, err)
}
