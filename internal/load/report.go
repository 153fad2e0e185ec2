package load

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// ResultsJSON is gantry's full record of a test (results.json): the k6
// summary plus the per-second series, the thresholds and the soak watch.
type ResultsJSON struct {
	*Result
	Summary *Summary `json:"summary"`
	Series  []Point  `json:"series"`
}

// JSON returns results.json.
func (r *Result) JSON() ([]byte, error) {
	return json.MarshalIndent(ResultsJSON{Result: r, Summary: r.Summary(), Series: r.Metrics.Series}, "", "  ")
}

// line is one polyline of a chart.
type line struct {
	Name   string
	Color  string
	X, Y   []float64
	Dashed bool
}

// svgChart renders lines as an inline SVG with axes labelled in unit.
func svgChart(title, unit string, lines []line) template.HTML {
	const w, h, pl, pr, pt, pb = 760.0, 240.0, 70.0, 20.0, 28.0, 30.0
	minX, maxX, maxY := math.Inf(1), math.Inf(-1), 0.0
	for _, l := range lines {
		for i := range l.X {
			minX, maxX = math.Min(minX, l.X[i]), math.Max(maxX, l.X[i])
			maxY = math.Max(maxY, l.Y[i])
		}
	}
	if math.IsInf(minX, 0) {
		minX, maxX = 0, 1
	}
	if maxX == minX {
		maxX = minX + 1
	}
	if maxY == 0 {
		maxY = 1
	}
	maxY *= 1.05
	sx := func(x float64) float64 { return pl + (x-minX)/(maxX-minX)*(w-pl-pr) }
	sy := func(y float64) float64 { return h - pb - y/maxY*(h-pt-pb) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`, w, h)
	fmt.Fprintf(&b, `<text x="%.0f" y="16" font-size="13" font-weight="bold">%s</text>`, pl, template.HTMLEscapeString(title))
	for i := 0; i <= 4; i++ {
		y := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, pl, w-pr, sy(y), sy(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, pl-4, sy(y)+4, template.HTMLEscapeString(axisLabel(y, unit)))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%.0fs</text><text x="%.1f" y="%.1f" text-anchor="end">%.0fs</text>`, pl, h-10, minX, w-pr, h-10, maxX)
	lx := pl + 10
	for _, l := range lines {
		var pts []string
		for i := range l.X {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(l.X[i]), sy(l.Y[i])))
		}
		dash := ""
		if l.Dashed {
			dash = ` stroke-dasharray="5,4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`, l.Color, dash, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`, lx, pt+2, l.Color, template.HTMLEscapeString(l.Name))
		lx += 12 + 7*float64(len(l.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped names
}

func axisLabel(v float64, unit string) string {
	switch unit {
	case "bytes":
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case "ms":
		return fmtMs(v)
	}
	return fmt.Sprintf("%.3g%s", v, unit)
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>gantry load report</title>
<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.bad{color:#b00}.ok{color:#070}</style>
</head><body>
<h1>Load test report</h1>
<p>Model {{.Model}}, {{.Start.Format "2006-01-02 15:04:05 MST"}} for {{.Elapsed}}.{{if .AbortedBy}} <b class="bad">Aborted by {{.AbortedBy}}.</b>{{end}}</p>
<h2>Thresholds</h2>
{{if .Thresholds}}<table><tr><th>metric</th><th>threshold</th><th>observed</th><th>result</th></tr>
{{range .Thresholds}}<tr><td>{{.Metric}}</td><td>{{.Source}}</td><td>{{printf "%.4g" .Observed}}</td><td class="{{if .OK}}ok{{else}}bad{{end}}">{{if .OK}}passed{{else}}failed{{end}}</td></tr>
{{end}}</table>{{else}}<p>none</p>{{end}}
<h2>Summary</h2><pre>{{.Text}}</pre>
{{range .Charts}}<div>{{.}}</div>{{end}}
{{if .Watch}}<h2>Soak watch</h2><p>{{.Watch.Samples}} samples of {{.Watch.URL}} ({{.Watch.Errors}} scrape errors).</p>
<ul>{{range .Watch.Verdicts}}<li class="{{if .OK}}ok{{else}}bad{{end}}"><b>{{.Watch}}</b>: {{.Reason}}</li>{{end}}</ul>
{{range .WatchCharts}}<div>{{.}}</div>{{end}}{{end}}
</body></html>
`))

// WriteHTML writes report.html with latency-over-time and rate-over-time
// charts and, when the soak watch ran, its series with their trend lines.
func (r *Result) WriteHTML(w io.Writer) error {
	s := r.Summary()
	var text strings.Builder
	if err := s.WriteText(&text); err != nil {
		return err
	}
	var t, p50, p99, mx, reqs, failed, dropped []float64
	prev := 0.0
	for _, p := range r.Metrics.Series {
		dt := p.T - prev
		prev = p.T
		if dt <= 0 {
			continue
		}
		t = append(t, p.T)
		p50, p99, mx = append(p50, p.P50), append(p99, p.P99), append(mx, p.Max)
		reqs = append(reqs, float64(p.Reqs)/dt)
		failed = append(failed, float64(p.Failed)/dt)
		dropped = append(dropped, float64(p.Dropped)/dt)
	}
	charts := []template.HTML{
		svgChart("Latency over time (from intended start)", "ms", []line{
			{Name: "p50", Color: "#2a7", X: t, Y: p50},
			{Name: "p99", Color: "#d80", X: t, Y: p99},
			{Name: "max", Color: "#c22", X: t, Y: mx, Dashed: true},
		}),
		svgChart("Rate over time", "/s", []line{
			{Name: "requests/s", Color: "#36c", X: t, Y: reqs},
			{Name: "failed/s", Color: "#c22", X: t, Y: failed},
			{Name: "dropped/s", Color: "#888", X: t, Y: dropped},
		}),
	}
	var watchCharts []template.HTML
	if r.Watch != nil {
		for _, sr := range r.Watch.Series {
			unit := ""
			if strings.HasSuffix(sr.Name, "_bytes") {
				unit = "bytes"
			}
			fitY := make([]float64, len(sr.Times))
			for i, x := range sr.Times {
				fitY[i] = sr.Fit.Intercept + sr.Fit.Slope*(x-sr.FromT)
			}
			watchCharts = append(watchCharts, svgChart(
				fmt.Sprintf("%s (Theil–Sen slope %.3g/s, p=%.2g)", sr.Name, sr.Fit.Slope, sr.Fit.P), unit,
				[]line{{Name: sr.Name, Color: "#36c", X: sr.Times, Y: sr.Values}, {Name: "trend", Color: "#c22", X: sr.Times, Y: fitY, Dashed: true}}))
		}
	}
	return reportTmpl.Execute(w, map[string]any{
		"Model": r.Model, "Start": r.Start, "Elapsed": r.End.Sub(r.Start).Round(1e6), "AbortedBy": r.AbortedBy,
		"Thresholds": r.Thresholds, "Text": text.String(), "Charts": charts, "Watch": r.Watch, "WatchCharts": watchCharts,
	})
}
