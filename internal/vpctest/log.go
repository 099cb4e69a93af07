package vpctest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Logger returns a logger that writes each record, from Debug up, as one
// line through t.Log. Lines logged once t's cleanups have reached the one
// Logger registers (after the test's end, by a goroutine that outlived it)
// are dropped, where t.Log would panic: create the logger before what logs
// from its own cleanup.
func Logger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter writes through t.Log until stopped.
type tWriter struct {
	mu sync.Mutex // guards t
	t  testing.TB // nil once stopped
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tWriter) stop() {
	w.mu.Lock()
	w.t = nil
	w.mu.Unlock()
}
