package mask

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler is a slog.Handler that masks the message and every attribute
// (string values, errors, fmt.Stringers, groups and any other value by
// its printed form) before passing the record on.
type Handler struct {
	m    *Masker
	next slog.Handler
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler returns a Handler masking with m in front of next.
func NewHandler(m *Masker, next slog.Handler) *Handler {
	return &Handler{m: m, next: next}
}

// Logger returns a logger that masks with m and writes through l's handler.
func Logger(m *Masker, l *slog.Logger) *slog.Logger {
	return slog.New(NewHandler(m, l.Handler()))
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.m.Mask(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = h.attr(a)
	}
	return &Handler{m: h.m, next: h.next.WithAttrs(masked)}
}

// WithGroup implements slog.Handler. Group names come from code, not
// from secrets, so they are kept.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{m: h.m, next: h.next.WithGroup(name)}
}

func (h *Handler) attr(a slog.Attr) slog.Attr {
	a.Key = h.m.Mask(a.Key)
	a.Value = h.value(a.Value)
	return a
}

func (h *Handler) value(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(h.m.Mask(v.String()))
	case slog.KindGroup:
		group := v.Group()
		masked := make([]slog.Attr, len(group))
		for i, a := range group {
			masked[i] = h.attr(a)
		}
		return slog.GroupValue(masked...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.StringValue(h.m.Mask(x.Error()))
		case nil:
			return v
		default:
			// Maps, slices, structs: keep their shape when the masked
			// copy prints clean (unexported fields are not masked, and
			// text handlers print them), else their printed form, masked.
			mv := h.m.Value(x)
			if s := fmt.Sprintf("%+v", mv); h.m.Mask(s) != s {
				return slog.StringValue(h.m.Mask(s))
			}
			return slog.AnyValue(mv)
		}
	}
	// Numbers, bools, times and durations print no secret of MinLength
	// characters that is not also their value; mask their text anyway
	// when it changes.
	if s := v.String(); h.m.Mask(s) != s {
		return slog.StringValue(h.m.Mask(s))
	}
	return v
}
