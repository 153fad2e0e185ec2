package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/store"
)

// failureTail is how many log lines of a failed step are shown.
const failureTail = 25

// progress shows a run as it happens. On a terminal it keeps a compact,
// redrawn view of the running stage (one line per step with its status and
// elapsed time); otherwise it prints every event as a prefixed line.
type progress struct {
	out io.Writer
	tty bool

	mu       sync.Mutex
	runID    int64
	started  time.Time
	stage    string
	steps    []*stepView
	byName   map[string]*stepView
	drawn    int // lines of the live area on screen
	spin     int
	stopLoop chan struct{}
	loopDone chan struct{}
}

type stepView struct {
	name    string
	status  store.Status
	started time.Time
	elapsed time.Duration
	message string
	tail    []string
}

var _ engine.Observer = (*progress)(nil)

func newProgress(out io.Writer, mode string) *progress {
	tty := mode == "tty" || (mode == "auto" && isTerminal(out))
	return &progress{out: out, tty: tty, byName: map[string]*stepView{}}
}

// Start begins redrawing (terminal mode).
func (p *progress) Start() {
	if !p.tty {
		return
	}
	p.stopLoop, p.loopDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.loopDone)
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.mu.Lock()
				p.spin++
				p.redrawLocked()
				p.mu.Unlock()
			case <-p.stopLoop:
				return
			}
		}
	}()
}

// Stop ends redrawing and waits for the redraw loop.
func (p *progress) Stop() {
	if p.stopLoop == nil {
		return
	}
	close(p.stopLoop)
	<-p.loopDone
	p.stopLoop = nil
}

// Observe implements engine.Observer.
func (p *progress) Observe(e engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		p.observeTTY(e)
	} else {
		p.observePlain(e)
	}
}

func (p *progress) observePlain(e engine.Event) {
	id := e.Stage + "/" + e.Step
	switch e.Type {
	case engine.RunStarted:
		p.runID, p.started = e.RunID, e.Time
		fmt.Fprintf(p.out, "run %d started\n", e.RunID)
	case engine.StageStarted:
		fmt.Fprintf(p.out, "==> stage %s\n", e.Stage)
	case engine.StepStarted:
		fmt.Fprintf(p.out, "[%s] started\n", id)
	case engine.StepLog:
		fmt.Fprintf(p.out, "[%s] %s\n", id, e.Line)
	case engine.StepFinished:
		fmt.Fprintf(p.out, "[%s] %s%s%s\n", id, e.Status, elapsed(e.Elapsed), suffix(e.Message))
	case engine.StageFinished:
		fmt.Fprintf(p.out, "==> stage %s %s%s%s\n", e.Stage, e.Status, elapsed(e.Elapsed), suffix(e.Message))
	}
}

func (p *progress) observeTTY(e engine.Event) {
	switch e.Type {
	case engine.RunStarted:
		p.runID, p.started = e.RunID, e.Time
		fmt.Fprintf(p.out, "run %d\n", e.RunID)
	case engine.StageStarted:
		p.stage = e.Stage
		p.steps, p.byName = nil, map[string]*stepView{}
	case engine.StepStarted:
		v := &stepView{name: e.Step, status: store.StatusRunning, started: e.Time}
		p.steps = append(p.steps, v)
		p.byName[e.Step] = v
	case engine.StepLog:
		if v := p.byName[e.Step]; v != nil {
			v.tail = append(v.tail, e.Line)
			if len(v.tail) > failureTail {
				v.tail = v.tail[len(v.tail)-failureTail:]
			}
		} else if e.Step == "on_failure" {
			p.clearLocked()
			fmt.Fprintf(p.out, "  %s\n", e.Line)
		}
	case engine.StepFinished:
		v := p.byName[e.Step]
		if v == nil {
			v = &stepView{name: e.Step}
			p.steps = append(p.steps, v)
			p.byName[e.Step] = v
		}
		v.status, v.elapsed, v.message = e.Status, e.Elapsed, e.Message
	case engine.StageFinished:
		p.clearLocked()
		fmt.Fprintf(p.out, "%s %s%s%s\n", icon(e.Status, 0), e.Stage, elapsed(e.Elapsed), suffix(e.Message))
		for _, v := range p.steps {
			fmt.Fprintln(p.out, "  "+p.stepLine(v))
			if v.status == store.StatusFailed {
				for _, l := range v.tail {
					fmt.Fprintf(p.out, "    │ %s\n", l)
				}
			}
		}
		p.steps, p.byName, p.stage = nil, map[string]*stepView{}, ""
	case engine.RunFinished:
		p.clearLocked()
	}
	p.redrawLocked()
}

func (p *progress) stepLine(v *stepView) string {
	d := v.elapsed
	if v.status == store.StatusRunning {
		d = time.Since(v.started)
	}
	line := fmt.Sprintf("%s %-22s %-9s %6s", icon(v.status, p.spin), v.name, v.status, fmtDur(d))
	if v.message != "" {
		line += "  " + firstLineOf(v.message)
	}
	return line
}

func (p *progress) clearLocked() {
	if p.drawn > 0 {
		fmt.Fprintf(p.out, "\x1b[%dA\x1b[J", p.drawn)
		p.drawn = 0
	}
}

func (p *progress) redrawLocked() {
	if !p.tty || p.stage == "" {
		return
	}
	p.clearLocked()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", icon(store.StatusRunning, p.spin), p.stage)
	for _, v := range p.steps {
		b.WriteString("  " + p.stepLine(v) + "\n")
	}
	io.WriteString(p.out, b.String())
	p.drawn = 1 + len(p.steps)
}

// Summary prints the closing line of a run.
func (p *progress) Summary(res *engine.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := ""
	if !p.started.IsZero() {
		d = " in " + fmtDur(time.Since(p.started))
	}
	fmt.Fprintf(p.out, "run %d %s%s%s\n", res.RunID, res.Status, d, suffix(res.Message))
	fmt.Fprintf(p.out, "details: gantry show %d · logs: gantry logs %d\n", res.RunID, res.RunID)
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func icon(s store.Status, spin int) string {
	switch s {
	case store.StatusPassed:
		return "✓"
	case store.StatusCached:
		return "↺"
	case store.StatusFailed:
		return "✗"
	case store.StatusSkipped:
		return "-"
	case store.StatusCancelled, store.StatusInterrupted:
		return "⊘"
	case store.StatusWaiting:
		return "⏸"
	case store.StatusRunning:
		return spinner[spin%len(spinner)]
	}
	return "·"
}

func elapsed(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return " (" + fmtDur(d) + ")"
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + firstLineOf(msg)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
