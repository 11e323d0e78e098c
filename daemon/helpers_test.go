package daemon

import (
	"context"
	"log/slog"
	"testing"
)

// testLogger logs to t.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(&tHandler{t: t})
}

type tHandler struct {
	t     *testing.T
	attrs []slog.Attr
}

func (h *tHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *tHandler) Handle(_ context.Context, r slog.Record) error {
	h.t.Helper()
	args := []any{r.Level.String(), r.Message}
	r.Attrs(func(a slog.Attr) bool { args = append(args, a.String()); return true })
	h.t.Log(args...)
	return nil
}
func (h *tHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &tHandler{t: h.t, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], a...)}
}
func (h *tHandler) WithGroup(string) slog.Handler { return h }
