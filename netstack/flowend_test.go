package netstack

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestFlowEnded: each flow dialed is reported once, with its addresses,
// the bytes relayed each way, and how it ended.
func TestFlowEnded(t *testing.T) {
	closedPort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	tests := []struct {
		name     string
		far      func(t *testing.T) DialFunc
		app      func(t *testing.T, c net.Conn) // nil: the dial must fail
		want     FlowResult
		up, down uint64
	}{
		{"ok", func(t *testing.T) DialFunc {
			return dialTo(serve(t, func(c net.Conn) { io.Copy(io.Discard, c); c.Write([]byte("fine")) }))
		}, func(t *testing.T, c net.Conn) {
			c.Write([]byte("hello"))
			c.(interface{ CloseWrite() error }).CloseWrite()
			if b, err := io.ReadAll(c); err != nil || string(b) != "fine" {
				t.Errorf("read %q, %v", b, err)
			}
		}, FlowOK, 5, 4},
		{"refused", func(t *testing.T) DialFunc { return dialTo(closedPort()) }, nil, FlowRefused, 0, 0},
		{"timeout", func(t *testing.T) DialFunc {
			return func(ctx context.Context, _, _ string) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() }
		}, nil, FlowTimeout, 0, 0},
		{"reset by the far side", func(t *testing.T) DialFunc {
			return dialTo(serve(t, func(c net.Conn) {
				b := make([]byte, 3)
				io.ReadFull(c, b)
				c.(*net.TCPConn).SetLinger(0) // Close sends a RST
			}))
		}, func(t *testing.T, c net.Conn) {
			c.Write([]byte("abc"))
			if _, err := io.ReadAll(c); err == nil {
				t.Error("the app saw a clean end, want a reset")
			}
		}, FlowReset, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			ends := make(chan FlowEnd, 2)
			h := newHarness(t, harnessOpts{cfg: Config{
				Dial: tt.far(t), ConnectTimeout: 200 * time.Millisecond,
				FlowEnded: func(e FlowEnd) { ends <- e },
			}})
			c, err := h.dialApp(t.Context(), vpcTarget)
			if tt.app == nil {
				if err == nil {
					c.Close()
					t.Fatal("dial succeeded, want a RST")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				tt.app(t, c)
				c.Close()
			}
			var e FlowEnd
			select {
			case e = <-ends:
			case <-time.After(10 * time.Second):
				t.Fatal("no FlowEnded within 10 s")
			}
			if e.Result != tt.want || e.Dst != vpcTarget || e.Src.Addr() != hostAddr || e.BytesUp != tt.up || e.BytesDown != tt.down {
				t.Errorf("FlowEnded %+v, want %v to %v, %d bytes up, %d down", e, tt.want, vpcTarget, tt.up, tt.down)
			}
			if (e.Err == nil) != (tt.want == FlowOK) || (e.Far == nil) != (tt.app == nil) || e.Start.IsZero() || e.Duration <= 0 {
				t.Errorf("FlowEnded %+v: err, far conn or times do not fit %v", e, tt.want)
			}
			select {
			case e := <-ends:
				t.Errorf("a second FlowEnded: %+v", e)
			default:
			}
		})
	}
}
