package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// MaxLogSize is the size at which an instance's log is rotated to log.1
// (one rotated file is kept).
const MaxLogSize = 10 << 20

// LogPath is the log of the instance whose directory is dir.
func LogPath(dir string) string { return filepath.Join(dir, "log") }

// logWriter appends lines, each prefixed with an RFC 3339 UTC timestamp, to
// a size-capped file. A line without its newline yet waits in buf.
type logWriter struct {
	path string
	max  int64
	now  func() time.Time

	mu   sync.Mutex
	f    *os.File
	size int64
	buf  []byte
	last string // the instance's last complete output line
}

func openLog(path string, max int64) (*logWriter, error) {
	w := &logWriter{path: path, max: max, now: time.Now}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *logWriter) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open instance log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open instance log: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Write implements io.Writer.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if err := w.line(w.buf[:i+1]); err != nil {
			return 0, err
		}
		if l := strings.TrimSpace(string(w.buf[:i])); l != "" {
			w.last = l
		}
		w.buf = w.buf[i+1:]
	}
	// A very long line without newline is written in pieces.
	if len(w.buf) >= 64<<10 {
		if err := w.line(append(w.buf, '\n')); err != nil {
			return 0, err
		}
		w.buf = nil
	}
	return len(p), nil
}

// Printf writes a line of gantry's own about the instance.
func (w *logWriter) Printf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.line([]byte("gantry: " + strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ") + "\n"))
}

// Last returns the instance's last line of output, at most 200 bytes.
func (w *logWriter) Last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return firstLine(w.last)
}

func (w *logWriter) line(l []byte) error {
	rec := append([]byte(w.now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")+" "), l...)
	if w.size > 0 && w.size+int64(len(rec)) > w.max {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(rec)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write instance log: %w", err)
	}
	return nil
}

func (w *logWriter) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("rotate instance log: %w", err)
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("rotate instance log: %w", err)
	}
	return w.open()
}

// Close writes a pending partial line and closes the file.
func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		_ = w.line(append(w.buf, '\n'))
		w.buf = nil
	}
	return w.f.Close()
}

// followPoll is how often a followed log is checked for new lines.
const followPoll = 200 * time.Millisecond

// ReadLog copies the log of the instance whose directory is dir to out:
// the rotated part first, then the current file. With follow it keeps
// copying what is appended (across rotations) until ctx ends, and then
// returns nil. A missing log is an error wrapping fs.ErrNotExist.
func ReadLog(ctx context.Context, dir string, follow bool, out io.Writer) error {
	p := LogPath(dir)
	if b, err := os.ReadFile(p + ".1"); err == nil {
		if _, err := out.Write(b); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read instance log: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("read instance log: %w", err)
	}
	defer func() { f.Close() }()
	if _, err := io.Copy(out, f); err != nil {
		return fmt.Errorf("read instance log: %w", err)
	}
	if !follow {
		return nil
	}
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := io.Copy(out, f); err != nil {
			return fmt.Errorf("read instance log: %w", err)
		}
		// Rotated: the path is a new file; finish the old one, then
		// continue with the new one from its start.
		cur, err := os.Stat(p)
		if err != nil {
			continue
		}
		if old, err := f.Stat(); err == nil && !os.SameFile(old, cur) {
			if _, err := io.Copy(out, f); err != nil {
				return fmt.Errorf("read instance log: %w", err)
			}
			nf, err := os.Open(p)
			if err != nil {
				continue
			}
			f.Close()
			f = nf
		}
	}
}
