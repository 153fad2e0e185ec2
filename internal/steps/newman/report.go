package newman

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// Report is what gantry keeps of newman's JSON report: counts, failures
// and per-request results. Response bodies and headers are not kept: they
// may hold secrets.
type Report struct {
	Requests         int
	FailedRequests   int
	Assertions       int
	FailedAssertions int
	Failures         []Failure
	Results          []Result
}

// Result is one executed request, as the newman-results.json artifact
// lists it.
type Result struct {
	Request    string `json:"request"`
	Method     string `json:"method,omitempty"`
	Iteration  int    `json:"iteration"`
	Status     int    `json:"status,omitempty"`
	ResponseMS int    `json:"response_ms,omitempty"`
	// Error is a request error's code (ECONNREFUSED, ...).
	Error      string            `json:"error,omitempty"`
	Assertions []AssertionResult `json:"assertions"`
}

// AssertionResult is one test of a request.
type AssertionResult struct {
	Name    string `json:"name"`
	Passed  bool   `json:"passed"`
	Skipped bool   `json:"skipped,omitempty"`
}

// jsonReport is the part of newman's JSON reporter output gantry reads.
type jsonReport struct {
	Run *struct {
		Stats struct {
			Requests   struct{ Total, Failed int } `json:"requests"`
			Assertions struct{ Total, Failed int } `json:"assertions"`
		} `json:"stats"`
		Failures []struct {
			Error struct {
				Name string `json:"name"`
				Test string `json:"test"`
				Code string `json:"code"`
			} `json:"error"`
			At     string `json:"at"`
			Source struct {
				Name string `json:"name"`
			} `json:"source"`
		} `json:"failures"`
		Executions []struct {
			Cursor struct {
				Iteration int `json:"iteration"`
			} `json:"cursor"`
			Item struct {
				Name string `json:"name"`
			} `json:"item"`
			Request struct {
				Method string `json:"method"`
			} `json:"request"`
			Response *struct {
				Code         int `json:"code"`
				ResponseTime int `json:"responseTime"`
			} `json:"response"`
			RequestError *struct {
				Code string `json:"code"`
				Name string `json:"name"`
			} `json:"requestError"`
			Assertions []struct {
				Assertion string `json:"assertion"`
				Skipped   bool   `json:"skipped"`
				Error     *struct {
					Name string `json:"name"`
				} `json:"error"`
			} `json:"assertions"`
		} `json:"executions"`
	} `json:"run"`
}

// ParseReport reads newman's JSON reporter output.
func ParseReport(data []byte) (*Report, error) {
	var jr jsonReport
	if err := json.Unmarshal(data, &jr); err != nil {
		return nil, fmt.Errorf("read newman's JSON report: %w", err)
	}
	if jr.Run == nil {
		return nil, fmt.Errorf("read newman's JSON report: no run")
	}
	r := jr.Run
	rep := &Report{
		Requests: r.Stats.Requests.Total, FailedRequests: r.Stats.Requests.Failed,
		Assertions: r.Stats.Assertions.Total, FailedAssertions: r.Stats.Assertions.Failed,
		Failures: []Failure{}, Results: []Result{},
	}
	for _, f := range r.Failures {
		fl := Failure{Request: f.Source.Name, At: f.At}
		switch {
		case f.Error.Name == "AssertionError" || f.Error.Test != "" && f.At != "request":
			fl.Assertion = f.Error.Test
			fl.At = "assertion"
		case f.Error.Code != "":
			fl.Code = f.Error.Code
		default:
			fl.Code = f.Error.Name
		}
		if fl.Request == "" {
			fl.Request = "(collection)"
		}
		rep.Failures = append(rep.Failures, fl)
	}
	for _, e := range r.Executions {
		res := Result{Request: e.Item.Name, Method: e.Request.Method, Iteration: e.Cursor.Iteration + 1, Assertions: []AssertionResult{}}
		if e.Response != nil {
			res.Status, res.ResponseMS = e.Response.Code, e.Response.ResponseTime
		}
		if e.RequestError != nil {
			res.Error = e.RequestError.Code
			if res.Error == "" {
				res.Error = e.RequestError.Name
			}
		}
		for _, a := range e.Assertions {
			res.Assertions = append(res.Assertions, AssertionResult{Name: a.Assertion, Passed: a.Error == nil && !a.Skipped, Skipped: a.Skipped})
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// envValue is one value of a Postman environment file.
type envValue struct {
	Key     string `json:"key"`
	Value   any    `json:"value"`
	Type    string `json:"type,omitempty"`
	Enabled *bool  `json:"enabled,omitempty"`
}

// readEnvironment reads the values of a Postman environment file.
func readEnvironment(path, name string) ([]envValue, error) {
	if err := checkJSONFile(path, name, false); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &CollectionError{File: name, Msg: fmt.Sprintf("read: %v", err)}
	}
	var doc struct {
		Values []envValue `json:"values"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, jsonError(name, data, err)
	}
	return doc.Values, nil
}

func setValue(vals []envValue, key, value string) []envValue {
	on := true
	for i := range vals {
		if vals[i].Key == key {
			vals[i].Value, vals[i].Enabled = value, &on
			return vals
		}
	}
	return append(vals, envValue{Key: key, Value: value, Type: "default", Enabled: &on})
}

// writeEnvironment writes a Postman environment file readable only by us.
func writeEnvironment(path string, vals []envValue) error {
	if vals == nil {
		vals = []envValue{}
	}
	data, err := json.Marshal(map[string]any{"name": "gantry", "values": vals})
	if err != nil {
		return fmt.Errorf("newman: encode environment: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("newman: write environment: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
