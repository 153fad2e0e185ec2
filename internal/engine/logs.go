package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/mask"
	"github.com/gantry-ci/gantry/internal/store"
)

// logFlushInterval is how often buffered log lines are written to the
// store, so that `gantry logs -f` in another process sees them.
const logFlushInterval = 250 * time.Millisecond

// maxLogLine bounds one stored line; longer lines are split.
const maxLogLine = 16 << 10

// DefaultStepLogLimit is how much of a step's log is stored when
// WithStepLogLimit is not given.
const DefaultStepLogLimit = 100 << 20

// WithStepLogLimit bounds the bytes of a step's stored log (each line
// counts its text and a newline; default DefaultStepLogLimit). Output past
// the limit is dropped and the log ends with a line saying how much; the
// step itself runs on. gantry's own lines are always kept.
func WithStepLogLimit(n int64) Option {
	return func(e *Engine) error {
		if n <= 0 {
			return fmt.Errorf("step log limit must be positive, got %d", n)
		}
		e.logLimit = n
		return nil
	}
}

// logSink is a step's log: it masks secrets, splits lines, reports them to
// the observer and stores them in batches. It is an io.Writer for the step.
type logSink struct {
	r           *runner
	ctx         context.Context
	stage, step string
	masked      *mask.Writer

	mu      sync.Mutex
	partial []byte
	batch   []store.LogLine
	// kept counts the bytes stored so far; past limit, output lines are
	// dropped and counted instead.
	kept, limit                int64
	droppedBytes, droppedLines int64

	stop chan struct{}
	done chan struct{}
}

func (r *runner) newLogSink(ctx context.Context, stage, step string) *logSink {
	l := &logSink{r: r, ctx: context.WithoutCancel(ctx), stage: stage, step: step,
		limit: r.e.logLimit, stop: make(chan struct{}), done: make(chan struct{})}
	if l.limit <= 0 {
		l.limit = DefaultStepLogLimit
	}
	l.masked = mask.NewWriter(r.masker, lineWriter{l})
	go l.flushLoop()
	return l
}

// Write implements io.Writer for the step's output.
func (l *logSink) Write(p []byte) (int, error) { return l.masked.Write(p) }

// lineWriter receives masked text.
type lineWriter struct{ l *logSink }

func (w lineWriter) Write(p []byte) (int, error) {
	l := w.l
	l.mu.Lock()
	l.partial = append(l.partial, p...)
	var lines []string
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(bytes.TrimRight(l.partial[:i], "\r")))
		l.partial = l.partial[i+1:]
	}
	for len(l.partial) > maxLogLine {
		lines = append(lines, string(l.partial[:maxLogLine]))
		l.partial = l.partial[maxLogLine:]
	}
	l.mu.Unlock()
	for _, line := range lines {
		l.add("out", line)
	}
	return len(p), nil
}

// sys records a line written by gantry itself.
func (l *logSink) sys(line string) {
	for _, part := range strings.Split(strings.TrimRight(l.r.masker.Mask(line), "\n"), "\n") {
		l.add("sys", part)
	}
}

func (l *logSink) add(stream, line string) {
	now := time.Now()
	size := int64(len(line)) + 1
	l.mu.Lock()
	if stream != "sys" && l.kept+size > l.limit {
		first := l.droppedLines == 0
		l.droppedBytes += size
		l.droppedLines++
		l.mu.Unlock()
		if first {
			l.add("sys", fmt.Sprintf("log limit of %d bytes reached: further output is not stored (the step keeps running)", l.limit))
		}
		return
	}
	l.kept += size
	l.batch = append(l.batch, store.LogLine{Time: now, Stream: stream, Text: line})
	l.mu.Unlock()
	l.r.e.obs.Observe(Event{Type: StepLog, Stage: l.stage, Step: l.step, Line: line, Stream: stream, Time: now})
}

func (l *logSink) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.flush()
		case <-l.stop:
			l.flush()
			return
		}
	}
}

func (l *logSink) flush() {
	l.mu.Lock()
	batch := l.batch
	l.batch = nil
	l.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := l.r.e.logStore.AppendLogs(l.ctx, l.r.run.ID, l.stage, l.step, batch); err != nil {
		l.r.e.log.Error("store log lines", "step", l.stage+"/"+l.step, "err", err)
	}
}

// Close writes out what is buffered and waits for the last flush.
func (l *logSink) Close() {
	_ = l.masked.Close()
	l.mu.Lock()
	rest := string(l.partial)
	l.partial = nil
	l.mu.Unlock()
	if rest != "" {
		l.add("out", rest)
	}
	l.mu.Lock()
	dropped, lines := l.droppedBytes, l.droppedLines
	l.mu.Unlock()
	if lines > 0 {
		l.sys(fmt.Sprintf("log truncated: dropped %d bytes (%d lines) of output past the %d byte limit of a step's stored log", dropped, lines, l.limit))
	}
	close(l.stop)
	<-l.done
}

// artifactSink stores a step's files in the artifact store and records
// them for the run.
type artifactSink struct {
	r           *runner
	stage, step string
}

func (a *artifactSink) Put(ctx context.Context, name, path, mediaType string) error {
	if !filepath.IsAbs(path) {
		path = filepath.Join(a.r.req.Dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("store artifact %s: not a regular file", path)
	}
	digest, size, err := a.putMasked(ctx, name, f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return a.record(ctx, name, digest, size, mediaType)
}

func (a *artifactSink) PutBytes(ctx context.Context, name string, data []byte, mediaType string) error {
	digest, size, err := a.putMasked(ctx, name, bytes.NewReader(data))
	if err != nil {
		return err
	}
	return a.record(ctx, name, digest, size, mediaType)
}

// putMasked stores r's bytes with the run's secrets hidden in every form
// the masker knows (the logs' masking, streamed): an artifact is served
// to whoever may read the run, so it must not carry a secret either.
// A file that held one is stored masked and the engine's log says so.
func (a *artifactSink) putMasked(ctx context.Context, name string, r io.Reader) (string, int64, error) {
	if a.r.masker.Empty() {
		return a.r.e.artifacts.Put(ctx, r)
	}
	pr, pw := io.Pipe()
	orig := sha256.New()
	var wg sync.WaitGroup
	wg.Go(func() {
		mw := mask.NewWriter(a.r.masker, pw)
		_, err := io.Copy(mw, io.TeeReader(r, orig))
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	})
	digest, size, err := a.r.e.artifacts.Put(ctx, pr)
	// Unblocks the copy when Put stopped before the end.
	pr.CloseWithError(io.ErrClosedPipe)
	wg.Wait()
	if err != nil {
		return "", 0, err
	}
	if digest != "sha256:"+hex.EncodeToString(orig.Sum(nil)) {
		msg := fmt.Sprintf("artifact %s held a secret: it is stored with the secret masked (%s)", a.r.masker.Mask(name), mask.Redacted)
		a.r.e.log.Warn(msg, "run", a.r.run.ID, "stage", a.stage, "step", a.step)
		line := []store.LogLine{{Stream: "sys", Text: msg}}
		if err := a.r.e.logStore.AppendLogs(context.WithoutCancel(ctx), a.r.run.ID, a.stage, a.step, line); err != nil {
			a.r.e.log.Error("record a log line", "run", a.r.run.ID, "err", err)
		}
	}
	return digest, size, nil
}

func (a *artifactSink) record(ctx context.Context, name, digest string, size int64, mediaType string) error {
	if mediaType == "" {
		mediaType = guessMediaType(name)
	}
	return a.r.e.artIndex.AddArtifact(ctx, &store.Artifact{
		RunID: a.r.run.ID, Stage: a.stage, Step: a.step, Name: name,
		Digest: digest, Size: size, MediaType: mediaType, Created: time.Now(),
	})
}

func guessMediaType(name string) string {
	switch {
	case strings.HasSuffix(name, ".sarif"):
		return "application/sarif+json"
	case strings.HasSuffix(name, ".cdx.json"):
		return "application/vnd.cyclonedx+json"
	case strings.HasSuffix(name, ".intoto.jsonl"):
		return "application/vnd.in-toto+json"
	}
	switch filepath.Ext(name) {
	case ".xml":
		return "application/xml"
	case ".json":
		return "application/json"
	case ".html", ".htm":
		return "text/html"
	case ".txt", ".log":
		return "text/plain"
	}
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		t, _, _ = strings.Cut(t, ";")
		return t
	}
	return "application/octet-stream"
}
