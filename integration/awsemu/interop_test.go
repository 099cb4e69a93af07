package awsemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
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
			s := newTestServer(t, func(c *Config) { c.Pacing = tt.pacing })
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

func (s *Server) sessionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.sessions {
		ids = append(ids, id)
	}
	return ids
}
