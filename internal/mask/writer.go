package mask

import (
	"bytes"
	"io"
	"sync"
)

// flushAt is how much unterminated text a Writer holds before it writes
// part of it out anyway.
const flushAt = 64 << 10

// Writer masks what is written through it before passing it on. It works
// line by line, so a secret split across two Write calls is still caught;
// Close writes out what is left.
type Writer struct {
	m   *Masker
	out io.Writer
	mu  sync.Mutex
	buf []byte
}

// NewWriter returns a Writer masking with m into out.
func NewWriter(m *Masker, out io.Writer) *Writer {
	return &Writer{m: m, out: out}
}

// Write implements io.Writer. It always reports len(p) written unless the
// underlying writer fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if i := bytes.LastIndexByte(w.buf, '\n'); i >= 0 {
		if err := w.emit(i + 1); err != nil {
			return 0, err
		}
	}
	if len(w.buf) > flushAt {
		if err := w.emit(w.safeCut()); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// safeCut returns how much of a long unterminated buffer can be written
// without cutting through a hidden value.
func (w *Writer) safeCut() int {
	cut := len(w.buf) - w.m.maxLen()
	for cut > 0 {
		start := w.m.straddle(w.buf, cut)
		if start < 0 {
			return cut
		}
		cut = start
	}
	return 0
}

func (w *Writer) emit(n int) error {
	if n == 0 {
		return nil
	}
	s := w.m.Mask(string(w.buf[:n]))
	rest := copy(w.buf, w.buf[n:])
	w.buf = w.buf[:rest]
	_, err := io.WriteString(w.out, s)
	return err
}

// Close writes out any remaining text. It does not close the underlying
// writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.emit(len(w.buf))
}
