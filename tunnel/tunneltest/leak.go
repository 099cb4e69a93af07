package tunneltest

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// leakWait bounds how long CheckGoroutines waits for goroutines to exit.
const leakWait = 5 * time.Second

// CheckGoroutines fails t if goroutines started during the test are still
// running when it ends, after waiting a moment for them to exit. Call it
// first in a test, so that its cleanup runs after all others. It cannot be
// used with t.Parallel.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	before := goroutineIDs(stacks())
	t.Cleanup(func() {
		deadline := time.Now().Add(leakWait)
		for {
			var leaked []string
			all := stacks()
			for id, stack := range goroutineIDs(all) {
				if _, ok := before[id]; !ok {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond) // polling for exits, not synchronisation
		}
	})
}

func stacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineIDs maps each goroutine's "goroutine N" header to its stack,
// leaving out the calling goroutine (the first one in the dump).
func goroutineIDs(dump []byte) map[string]string {
	ids := make(map[string]string)
	for i, g := range bytes.Split(dump, []byte("\n\n")) {
		if i == 0 {
			continue
		}
		header, _, _ := strings.Cut(string(g), " [")
		ids[header] = string(g)
	}
	return ids
}
