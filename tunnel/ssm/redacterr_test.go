package ssm_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

// presignedQuery is a presigned StreamUrl's query: none of it may show in
// an error.
const presignedQuery = "role=publish_subscribe&X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=AKIDEXAMPLE%2F20261206%2Feu-west-1%2Fssmmessages%2Faws4_request" +
	"&X-Amz-Security-Token=c2Vzc2lvbi10b2tlbg%3D%3D&X-Amz-SignedHeaders=host" +
	"&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestDialErrorRedacted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now

	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()

	for _, tt := range []struct {
		name  string
		host  string
		cause func(error) bool
	}{
		{"refused", closed, func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{"untrusted CA", srv.Listener.Addr().String(), func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bare := "wss://" + tt.host + "/v1/data-channel/itsme-0625cb834d1273961"
			_, err := ssm.Dial(context.Background(), ssm.Config{
				StreamURL:        bare + "?" + presignedQuery,
				Token:            testToken,
				HTTPClient:       &http.Client{Transport: &http.Transport{}}, // the system roots only
				Logger:           vpctest.Logger(t),
				HandshakeTimeout: 10 * time.Second,
			})
			if err == nil {
				t.Fatal("dial succeeded")
			}
			msg := err.Error()
			for _, s := range []string{"X-Amz-", "AKIDEXAMPLE", "c2Vzc2lvbi10b2tlbg", "0123456789abcdef"} {
				if strings.Contains(msg, s) {
					t.Errorf("error shows %q: %s", s, msg)
				}
			}
			if !strings.Contains(msg, bare) {
				t.Errorf("error %q does not name %s", msg, bare)
			}
			var ue *url.Error
			if !errors.As(err, &ue) || strings.Contains(ue.URL, "?") || !tt.cause(err) {
				t.Errorf("error %q: want a *url.Error with a bare URL and the cause in its chain", msg)
			}
		})
	}
}
