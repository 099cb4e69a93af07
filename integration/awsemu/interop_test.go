package awsemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	vpcssm "github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

// TestInteropTunnelSSM proves interop with vpcvpn's own client (test only:
// the emulator itself never imports tunnel/ssm).
func TestInteropTunnelSSM(t *testing.T) {
	tests := []struct {
		name   string
		pacing bool
		drop   string // admin action breaking the WebSocket mid-transfer
		signed bool
	}{
		{name: "no pacing"},
		{name: "pacing", pacing: true},
		{name: "drop and resume", pacing: true, drop: "drop"},
		{name: "bye and resume", pacing: true, drop: "bye"},
		{name: "sigv4 upgrade", signed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, func(c *Config) { c.Pacing = tt.pacing }, greetingEcho(t))
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(s.CAPEM())
			cfg := vpcssm.Config{TLSConfig: &tls.Config{RootCAs: pool}}
			if tt.signed {
				creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: testCreds.Secret}, nil
				})
				cfg.Header = vpcssm.SigV4Header(creds, testCreds.Region, nil)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := vpcssm.Start(ctx, ssmClient(t, s), testInstance, vpcssm.SessionOptions{Config: cfg})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer conn.Close()
			readGreeting(t, conn)
			data := make([]byte, 64<<10)
			_, _ = rand.Read(data)
			errc := make(chan error, 1)
			go func() { _, err := conn.Write(data); errc <- err }()
			got := make([]byte, len(data))
			if tt.drop != "" {
				if _, err := io.ReadFull(conn, got[:8<<10]); err != nil {
					t.Fatalf("read before drop: %v", err)
				}
				for _, sid := range s.sessionIDs() {
					post(t, s, tt.drop+"?session="+sid)
				}
			}
			off := 0
			if tt.drop != "" {
				off = 8 << 10
			}
			if _, err := io.ReadFull(conn, got[off:]); err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := <-errc; err != nil || !bytes.Equal(got, data) {
				t.Fatalf("echo: write err %v, equal %v", err, bytes.Equal(got, data))
			}
		})
	}
}

// TestInteropFaults runs vpcvpn's own client through every frame fault:
// a 256 KiB echo must come back byte-exact. Each loss costs about one
// resend tick (100 ms): both sides resend only their head.
func TestInteropFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults string
	}{
		{"lost output", "drop-out=1/40"},
		{"lost output random", "drop-out=0.02&seed=1"},
		{"lost input", "drop-in=1/40"},
		{"lost agent acks", "drop-out-ack=1/10"},
		{"lost client acks", "drop-in-ack=1/10"},
		{"duplicated output", "dup-out=1/7"},
		{"duplicated input", "dup-in=1/7"},
		{"reordered output", "reorder-out=1/5"},
		{"delayed acks", "ack-delay=300ms"},
		{"everything", "drop-out=1/61&drop-in=1/59&drop-out-ack=1/23&drop-in-ack=1/19&dup-out=1/17&dup-in=1/13&reorder-out=1/11&ack-delay=50ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.faults)
			f, err := ParseFrameFaults(q)
			if err != nil {
				t.Fatal(err)
			}
			s := newTestServer(t, func(c *Config) { c.Faults = f }, greetingEcho(t))
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(s.CAPEM())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := vpcssm.Start(ctx, ssmClient(t, s), testInstance,
				vpcssm.SessionOptions{Config: vpcssm.Config{TLSConfig: &tls.Config{RootCAs: pool}}})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer conn.Close()
			readGreeting(t, conn)
			data := make([]byte, 256<<10)
			_, _ = rand.Read(data)
			errc := make(chan error, 1)
			go func() { _, err := conn.Write(data); errc <- err }()
			got := make([]byte, len(data))
			start := time.Now()
			if _, err := io.ReadFull(conn, got); err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := <-errc; err != nil || !bytes.Equal(got, data) {
				t.Fatalf("echo: write err %v, equal %v", err, bytes.Equal(got, data))
			}
			fl := s.session(s.sessionIDs()[0]).faults()
			t.Logf("echoed in %s; %v", time.Since(start).Round(time.Millisecond), fl.logAttrs())
		})
	}
}

// interopGreeting is what the test instance's server sends first, as sshd
// does: vpcvpn's client writes only after the server has spoken.
var interopGreeting = []byte("SSH-2.0-awsemu-interop\r\n")

// greetingEcho points the test instance at a server that sends
// interopGreeting, then echoes.
func greetingEcho(t *testing.T) func(*Config) {
	addr := serveTCP(t, func(c net.Conn) {
		if _, err := c.Write(interopGreeting); err == nil {
			_, _ = io.Copy(c, c)
		}
	})
	return func(c *Config) { c.Instances[testInstance] = addr }
}

// readGreeting reads interopGreeting from c.
func readGreeting(t *testing.T, c io.Reader) {
	t.Helper()
	got := make([]byte, len(interopGreeting))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, interopGreeting) {
		t.Fatalf("greeting: %q, %v", got, err)
	}
}

func (s *Server) sessionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.sessions {
		ids = append(ids, id)
	}
	return ids
}
