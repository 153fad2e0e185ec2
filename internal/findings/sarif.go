package findings

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// SARIF 2.1.0, the subset gantry writes: one run per report, rules by id,
// results with a level, a message and a physical location.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID string `json:"id"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

type sarifLogical struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
}

// SARIF encodes reports as one SARIF 2.1.0 log, one run per report.
func SARIF(reports ...*Report) ([]byte, error) {
	log := sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{}}
	for _, r := range reports {
		run := sarifRun{
			Tool:    sarifTool{Driver: sarifDriver{Name: r.Tool, Version: r.Version, InformationURI: r.InfoURI, Rules: []sarifRule{}}},
			Results: []sarifResult{},
		}
		index := map[string]int{}
		for _, f := range r.Findings {
			rule := f.Rule
			if rule == "" {
				rule = r.Tool
			}
			i, ok := index[rule]
			if !ok {
				i = len(run.Tool.Driver.Rules)
				index[rule] = i
				run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{ID: rule})
			}
			res := sarifResult{RuleID: rule, RuleIndex: i, Level: f.Severity.String(), Message: sarifMessage{Text: f.Message}}
			if f.File != "" {
				res.Locations = []sarifLocation{location(f)}
			}
			run.Results = append(run.Results, res)
		}
		log.Runs = append(log.Runs, run)
	}
	b, err := json.MarshalIndent(log, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode SARIF: %w", err)
	}
	return append(b, '\n'), nil
}

// location makes a physical location for file paths and a logical one for
// documents that are not files (commits, rendered charts).
func location(f Finding) sarifLocation {
	if strings.ContainsAny(f.File, " \t") {
		return sarifLocation{LogicalLocations: []sarifLogical{{FullyQualifiedName: f.File}}}
	}
	u := (&url.URL{Path: f.File}).String()
	loc := sarifLocation{PhysicalLocation: &sarifPhysical{ArtifactLocation: sarifArtifact{URI: u}}}
	if f.Line > 0 {
		loc.PhysicalLocation.Region = &sarifRegion{StartLine: f.Line, StartColumn: f.Column}
	}
	return loc
}

// ReadSARIF decodes the results of a SARIF log written by SARIF back into
// reports (for tests and for tools that emit SARIF themselves).
func ReadSARIF(data []byte) ([]*Report, error) {
	var log sarifLog
	if err := json.Unmarshal(data, &log); err != nil {
		return nil, fmt.Errorf("decode SARIF: %w", err)
	}
	if log.Version != sarifVersion {
		return nil, fmt.Errorf("decode SARIF: version %q, want %s", log.Version, sarifVersion)
	}
	var out []*Report
	for _, run := range log.Runs {
		r := &Report{Tool: run.Tool.Driver.Name, Version: run.Tool.Driver.Version, InfoURI: run.Tool.Driver.InformationURI}
		for _, res := range run.Results {
			sev, err := ParseSeverity(res.Level)
			if err != nil {
				return nil, fmt.Errorf("decode SARIF result %s: %w", res.RuleID, err)
			}
			f := Finding{Rule: res.RuleID, Severity: sev, Message: res.Message.Text}
			if len(res.Locations) > 0 {
				l := res.Locations[0]
				if l.PhysicalLocation != nil {
					p, err := url.PathUnescape(l.PhysicalLocation.ArtifactLocation.URI)
					if err != nil {
						p = l.PhysicalLocation.ArtifactLocation.URI
					}
					f.File = p
					if reg := l.PhysicalLocation.Region; reg != nil {
						f.Line, f.Column = reg.StartLine, reg.StartColumn
					}
				} else if len(l.LogicalLocations) > 0 {
					f.File = l.LogicalLocations[0].FullyQualifiedName
				}
			}
			r.Findings = append(r.Findings, f)
		}
		out = append(out, r)
	}
	return out, nil
}
