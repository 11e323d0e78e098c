package providertest

import (
	"bytes"
	"sync"
	"testing"
)

// testWriter writes log lines to t.Log until the harness's cleanup, and
// drops them afterwards (t.Log panics once a test has completed).
type testWriter struct {
	t testing.TB

	mu   sync.Mutex // guards done
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimSuffix(p, []byte("\n"))))
	}
	return len(p), nil
}

// close stops the logging.
func (w *testWriter) close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
