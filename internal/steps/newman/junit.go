package newman

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

// newman's JUnit XML: one testsuite per request, one testcase per
// assertion. gantry keeps its structure, names, counts and times, and
// drops what may quote a response: failure messages, stack traces and
// the request errors in system-err.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Name    string       `xml:"name,attr"`
	Tests   string       `xml:"tests,attr"`
	Time    string       `xml:"time,attr"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	ID        string      `xml:"id,attr,omitempty"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Tests     string      `xml:"tests,attr"`
	Failures  string      `xml:"failures,attr"`
	Errors    string      `xml:"errors,attr"`
	Time      string      `xml:"time,attr"`
	SystemErr *junitText  `xml:"system-err,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitText struct {
	Body string `xml:",chardata"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Type    string `xml:"type,attr,omitempty"`
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// sanitizeJUnit rewrites newman's JUnit XML without assertion messages,
// stack traces and request error texts, which may quote response bodies
// or headers; failures say which request and assertion failed.
func sanitizeJUnit(data []byte, rep *Report) ([]byte, error) {
	var s junitSuites
	if err := xml.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read newman's JUnit XML: %w", err)
	}
	reqErr := map[string]string{}
	for _, r := range rep.Results {
		if r.Error != "" {
			reqErr[r.Request] = r.Error
		}
	}
	for i := range s.Suites {
		su := &s.Suites[i]
		if su.SystemErr != nil {
			msg := "request error"
			if code := reqErr[su.Name]; code != "" {
				msg += ": " + code
			}
			su.SystemErr = &junitText{Body: msg}
		}
		for j := range su.Cases {
			c := &su.Cases[j]
			for _, m := range []*junitMessage{c.Failure, c.Error} {
				if m != nil {
					m.Message = fmt.Sprintf("assertion %q of request %q failed", c.Name, su.Name)
					m.Body = "see the step's log for newman's account"
				}
			}
		}
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(&s); err != nil {
		return nil, fmt.Errorf("write JUnit XML: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
