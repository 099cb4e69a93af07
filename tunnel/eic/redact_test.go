package eic

import (
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
)

// secrets are what no error may show: the presigned query's keys and the
// credentials' values, plain and query-escaped.
var secrets = []string{"X-Amz-Security-Token", "X-Amz-Signature", "X-Amz-Credential",
	testSecret, testToken, url.QueryEscape(testToken), url.QueryEscape(testSecret)}

func assertRedacted(t *testing.T, err error, host string) {
	t.Helper()
	if err == nil {
		t.Fatal("dial succeeded")
	}
	msg := err.Error()
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("error shows %q: %s", s, msg)
		}
	}
	if want := "wss://" + host + "/openTunnel"; !strings.Contains(msg, want) {
		t.Errorf("error %q does not name %s", msg, want)
	}
	var ue *url.Error
	if !errors.As(err, &ue) || strings.Contains(ue.URL, "?") {
		t.Errorf("error %q: want a *url.Error with a bare URL", msg)
	}
}

func TestDialErrorRedacted(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		cfg := testConfig(addr)
		_, err = Dial(t.Context(), cfg)
		assertRedacted(t, err, addr)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("error %v: want ECONNREFUSED in its chain", err)
		}
	})
	t.Run("proxy refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		proxy := &url.URL{Scheme: "http", Host: ln.Addr().String()}
		ln.Close()
		const host = "eice-0123456789abcdef0.1a2b3c4d.ec2-instance-connect-endpoint.eu-west-1.amazonaws.com"
		cfg := testConfig(host)
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
		_, err = Dial(t.Context(), cfg)
		assertRedacted(t, err, host)
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "proxyconnect") {
			t.Errorf("error %v: want the proxy's refusal in its chain", err)
		}
	})
	t.Run("untrusted CA", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
		srv.StartTLS()
		defer srv.Close()
		addr := srv.Listener.Addr().String()
		cfg := testConfig(addr)
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{}} // the system roots only
		_, err := Dial(t.Context(), cfg)
		assertRedacted(t, err, addr)
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Errorf("error %v: want an x509.UnknownAuthorityError in its chain", err)
		}
	})
}
