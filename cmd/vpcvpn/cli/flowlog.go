package cli

// The flow log (--flow-log FILE): one JSON line per flow, appended when it
// ends, for an audit trail of what went through the tunnel:
//
//	{"time":"2026-12-06T10:12:03.5Z","tunnel":"vpcvpn0","dst":"10.0.1.5:5432",
//	 "name":"db.corp.internal","duration_ms":1520,"bytes_up":312,
//	 "bytes_down":1045,"result":"ok","conn":1,"session":"ec2-user-0a1b..."}
//
// The file is the invoking user's, mode 0600: it says where they went. A
// single goroutine writes it; flows hand it their record without waiting,
// and a record that finds the queue full (a stalled or full disk) is
// dropped and counted, never holding up a flow.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/netstack"
)

// flowLogQueue bounds the records waiting for the writer.
const flowLogQueue = 1024

// flowLog appends the tunnel's flow records to a file.
type flowLog struct {
	path    string
	tunnel  string
	f       *os.File
	log     *slog.Logger
	queue   chan engine.FlowRecord
	dropped atomic.Uint64 // records not written: the queue was full or a write failed
	done    chan struct{} // closed when the writer has returned

	closeOnce sync.Once
	mu        sync.Mutex // guards closed, against a send after close
	closed    bool
}

// flowLine is one line of the flow log.
type flowLine struct {
	Time       time.Time `json:"time"` // the flow's start
	Tunnel     string    `json:"tunnel"`
	Dst        string    `json:"dst"`
	Name       string    `json:"name,omitempty"` // the name the tunnel's DNS proxy answered dst for
	DurationMS float64   `json:"duration_ms"`
	BytesUp    uint64    `json:"bytes_up"`
	BytesDown  uint64    `json:"bytes_down"`
	Result     string    `json:"result"` // ok, refused, timeout, reset
	Error      string    `json:"error,omitempty"`
	Conn       int       `json:"conn,omitempty"`    // the connection (session) it ran on, as in status
	Session    string    `json:"session,omitempty"` // its SSM session id
}

// openFlowLogFile opens path for appending, creating it, with mode 0600 and
// the invoking user as owner. The error names the fix.
func openFlowLogFile(path string, inv invoker) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|noFollow, 0o600)
	if err == nil {
		err = ownFlowLog(f, inv)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--flow-log %s cannot be written (%v): give a file in a directory that exists and you may write, e.g. --flow-log ~/vpcvpn-flows.jsonl", path, err)
	}
	return f, nil
}

// ownFlowLog makes f the invoker's, readable by them alone.
func ownFlowLog(f *os.File, inv invoker) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if err := checkLinks(fi); err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return err
		}
	}
	if inv.UID >= 0 && os.Geteuid() == 0 {
		return f.Chown(inv.UID, inv.GID)
	}
	return nil
}

// checkFlowLog checks that path can be written, creating the file: `up`
// refuses a bad path before it sets anything up. It returns the absolute
// path.
func checkFlowLog(path string, inv invoker) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("--flow-log %s: %w", path, err)
	}
	f, err := openFlowLogFile(abs, inv)
	if err != nil {
		return "", err
	}
	return abs, f.Close()
}

// openFlowLog opens the flow log at path, or returns nil for "".
func openFlowLog(path, tunnel string, inv invoker, log *slog.Logger) (*flowLog, error) {
	if path == "" {
		return nil, nil
	}
	f, err := openFlowLogFile(path, inv)
	if err != nil {
		return nil, err
	}
	l := &flowLog{
		path: path, tunnel: tunnel, f: f, log: log,
		queue: make(chan engine.FlowRecord, flowLogQueue),
		done:  make(chan struct{}),
	}
	go l.write() // owned by l: close waits for it
	return l, nil
}

// record is engine.Config.FlowEnded: it queues r for the writer, or drops
// it if the queue is full.
func (l *flowLog) record(r engine.FlowRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	select {
	case l.queue <- r:
	default:
		l.dropped.Add(1)
	}
}

// flowEnded is the engine's FlowEnded for l, nil without a flow log.
func (l *flowLog) flowEnded() func(engine.FlowRecord) {
	if l == nil {
		return nil
	}
	return l.record
}

// write writes the queued records until close.
func (l *flowLog) write() {
	defer close(l.done)
	warned := false
	for r := range l.queue {
		b, err := json.Marshal(l.line(r))
		if err == nil {
			_, err = l.f.Write(append(b, '\n'))
		}
		if err != nil {
			l.dropped.Add(1)
			if !warned {
				l.log.Warn("flow log: records are dropped", "path", l.path, "err", err)
				warned = true
			}
		}
	}
}

// line is r as a line of the log.
func (l *flowLog) line(r engine.FlowRecord) flowLine {
	ln := flowLine{
		Time: r.Start.UTC(), Tunnel: l.tunnel, Dst: r.Dst.String(), Name: r.Name,
		DurationMS: float64(r.Duration.Microseconds()) / 1000,
		BytesUp:    r.BytesUp, BytesDown: r.BytesDown, Result: r.Result.String(),
		Conn: r.Conn, Session: r.Session,
	}
	if r.Err != nil && r.Result != netstack.FlowOK {
		ln.Error = r.Err.Error()
	}
	return ln
}

// close writes what is queued and closes the file. It is idempotent and
// nil-safe; records after it are dropped.
func (l *flowLog) close() error {
	if l == nil {
		return nil
	}
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.queue)
		l.mu.Unlock()
		<-l.done
		err = l.f.Close()
	})
	return err
}
