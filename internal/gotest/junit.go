package gotest

import (
	"encoding/xml"
	"fmt"
	"io"
)

// JUnit XML as read by Jenkins, GitLab and most CI viewers: one testsuite
// per package, one testcase per test.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string         `xml:"name,attr"`
	Tests     int            `xml:"tests,attr"`
	Failures  int            `xml:"failures,attr"`
	Errors    int            `xml:"errors,attr"`
	Skipped   int            `xml:"skipped,attr"`
	Time      string         `xml:"time,attr"`
	Cases     []junitCase    `xml:"testcase"`
	SystemOut *junitCharData `xml:"system-out,omitempty"`
}

type junitCase struct {
	Name      string         `xml:"name,attr"`
	Classname string         `xml:"classname,attr"`
	Time      string         `xml:"time,attr"`
	Failure   *junitMessage  `xml:"failure,omitempty"`
	Skipped   *junitMessage  `xml:"skipped,omitempty"`
	SystemOut *junitCharData `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

type junitCharData struct {
	Body string `xml:",chardata"`
}

// WriteJUnit writes r as JUnit XML. A package that failed without a failed
// test (build error, panic, race outside a test) gets an error count and
// its output.
func WriteJUnit(w io.Writer, r *Report) error {
	var all junitSuites
	var total float64
	for _, p := range r.Packages {
		s := junitSuite{Name: p.Name, Time: secs(p.Elapsed.Seconds())}
		for _, t := range p.Tests {
			c := junitCase{Name: t.Name, Classname: p.Name, Time: secs(t.Elapsed.Seconds())}
			switch t.Status {
			case StatusFail:
				msg := "Failed"
				if t.Race {
					msg = "Failed: data race"
				}
				c.Failure = &junitMessage{Message: msg, Type: "failure", Body: t.Output}
				s.Failures++
			case StatusSkip:
				c.Skipped = &junitMessage{Message: "Skipped", Body: t.Output}
				s.Skipped++
			}
			s.Tests++
			s.Cases = append(s.Cases, c)
		}
		if p.Status == StatusFail && s.Failures == 0 {
			s.Errors = 1
			s.SystemOut = &junitCharData{Body: p.Output}
		}
		total += p.Elapsed.Seconds()
		all.Tests += s.Tests
		all.Failures += s.Failures + s.Errors
		all.Skipped += s.Skipped
		all.Suites = append(all.Suites, s)
	}
	all.Time = secs(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return fmt.Errorf("write JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(s float64) string { return fmt.Sprintf("%.3f", s) }
