//go:build linux

package lab

import (
	"bytes"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestStatusField(t *testing.T) {
	status := "Name:\tvpcvpn\nVmRSS:\t   21504 kB\nThreads:\t8\nVmBad:\tx kB\n"
	tests := []struct {
		name string
		want uint64
		ok   bool
	}{
		{"VmRSS", 21504 * 1024, true},
		{"Threads", 8, true},
		{"VmBad", 0, false},
		{"VmSwap", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statusField(status, tt.name)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("statusField(%s) = %d, %v; want %d (ok %v)", tt.name, got, err, tt.want, tt.ok)
			}
		})
	}
}

// TestReadProcUsage reads this process, which has memory, descriptors and
// threads.
func TestReadProcUsage(t *testing.T) {
	u, err := ReadProcUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS < 1<<20 || u.FDs < 3 || u.Threads < 1 {
		t.Errorf("ReadProcUsage(self) = %+v; want some of each", u)
	}
	if _, err := ReadProcUsage(-1); err == nil {
		t.Error("ReadProcUsage(-1) succeeded")
	}
}

// TestReadFileLimit agrees with getrlimit for this process.
func TestReadFileLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	soft, hard, err := ReadFileLimit(os.Getpid())
	if err != nil || soft != lim.Cur || hard != lim.Max {
		t.Errorf("ReadFileLimit(self) = %d, %d, %v; want %d, %d", soft, hard, err, lim.Cur, lim.Max)
	}
}

// TestEchoMany echoes every byte, then half-closes after the client's
// half-close.
func TestEchoMany(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ln, EchoMany)
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("vpcvpn"), 10_000) // more than EchoMany's buffer
	go func() {
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echoed %d bytes, %v; want the %d sent, then EOF", len(got), err, len(msg))
	}
}
