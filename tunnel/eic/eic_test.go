package eic

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/coder/websocket"
)

const (
	testAKID   = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testToken  = "session/token+with=odd&chars"
	testRegion = "eu-west-1"
	testID     = "eice-0123456789abcdef0"
)

func testCreds() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(testAKID, testSecret, testToken)
}

func testConfig(dns string) Config {
	return Config{
		EndpointID:        testID,
		DNSName:           dns,
		Region:            testRegion,
		Credentials:       testCreds(),
		PrivateIP:         netip.MustParseAddr("10.0.1.5"),
		MaxTunnelDuration: 30 * time.Minute,
	}
}

func TestPresign(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	cfg := testConfig("eice-0123456789abcdef0.1a2b3c4d.ec2-instance-connect-endpoint.eu-west-1.amazonaws.com")
	s, err := Presign(t.Context(), &cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "wss" || u.Host != cfg.DNSName || u.Path != "/openTunnel" {
		t.Errorf("URL %s://%s%s, want wss://%s/openTunnel", u.Scheme, u.Host, u.Path, cfg.DNSName)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"instanceConnectEndpointId": testID,
		"remotePort":                "22",
		"privateIpAddress":          "10.0.1.5",
		"maxTunnelDuration":         "1800",
		"X-Amz-Expires":             "60",
		"X-Amz-SignedHeaders":       "host",
		"X-Amz-Security-Token":      testToken,
		"X-Amz-Credential":          testAKID + "/20261206/eu-west-1/ec2-instance-connect/aws4_request",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if err := verifyPresigned(u.Host, u.Path, u.RawQuery, testSecret, testRegion, now.Add(59*time.Second)); err != nil {
		t.Errorf("verify: %v", err)
	}
	if err := verifyPresigned(u.Host, u.Path, u.RawQuery, testSecret, testRegion, now.Add(61*time.Second)); err == nil {
		t.Error("verified after its 60 s")
	}
	q.Set("remotePort", "3389")
	if err := verifyPresigned(u.Host, u.Path, q.Encode(), testSecret, testRegion, now); err == nil {
		t.Error("verified with remotePort changed")
	}

	cfg.MaxTunnelDuration = 0
	cfg.RemotePort = 2222
	s, err = Presign(t.Context(), &cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	u, _ = url.Parse(s)
	if q := u.Query(); q.Has("maxTunnelDuration") || q.Get("remotePort") != "2222" {
		t.Errorf("query %v: want no maxTunnelDuration and remotePort 2222", q)
	}
}

func TestConfigInvalid(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"endpoint id", func(c *Config) { c.EndpointID = "i-0123" }, "eice-0123456789abcdef0"},
		{"dns name", func(c *Config) { c.DNSName = "" }, "no DNS name"},
		{"region", func(c *Config) { c.Region = "" }, "AWS_REGION"},
		{"credentials", func(c *Config) { c.Credentials = nil }, "credentials"},
		{"ip missing", func(c *Config) { c.PrivateIP = netip.Addr{} }, "private IP"},
		{"ipv6", func(c *Config) { c.PrivateIP = netip.MustParseAddr("fd00::5") }, "IPv4 only"},
		{"duration long", func(c *Config) { c.MaxTunnelDuration = 2 * time.Hour }, "whole seconds from 1s to 1h0m0s"},
		{"duration fraction", func(c *Config) { c.MaxTunnelDuration = 1500 * time.Millisecond }, "whole seconds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("example.com")
			tt.modify(&cfg)
			_, err := Presign(t.Context(), &cfg, time.Now())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// endpoint is an in-test endpoint on loopback: it checks the presigned
// query as the service does and hands the accepted WebSocket to serve.
func endpoint(t *testing.T, serve func(*websocket.Conn)) Config {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/openTunnel" {
			http.NotFound(w, r)
			return
		}
		if err := verifyPresigned(r.Host, r.URL.Path, r.URL.RawQuery, testSecret, testRegion, time.Now()); err != nil {
			t.Errorf("presigned query: %v", err)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		ws.SetReadLimit(-1)
		serve(ws)
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.Listener.Addr().String())
	cfg.HTTPClient = srv.Client()
	return cfg
}

func TestStream(t *testing.T) {
	closed := make(chan websocket.StatusCode, 1)
	cfg := endpoint(t, func(ws *websocket.Conn) {
		ctx := context.Background()
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				closed <- websocket.CloseStatus(err)
				return
			}
			if typ != websocket.MessageBinary || len(b) > maxFrame {
				t.Errorf("frame of type %v, %d bytes: want binary, at most %d", typ, len(b), maxFrame)
			}
			if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
				t.Errorf("echo: %v", err)
				return
			}
		}
	})
	start := time.Now()
	c, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RemoteAddr().String(); got != "10.0.1.5:22" {
		t.Errorf("RemoteAddr %s, want 10.0.1.5:22", got)
	}
	if e := c.Expires(); e.Before(start.Add(30*time.Minute)) || e.After(time.Now().Add(30*time.Minute)) {
		t.Errorf("Expires %s, want 30 minutes after Dial", e)
	}
	want := make([]byte, 1<<20+17)
	rand.Read(want)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the stream came back altered")
	}
	c.Close()
	c.Close()
	if code := <-closed; code != websocket.StatusNormalClosure {
		t.Errorf("endpoint saw close code %d, want 1000", code)
	}
	if _, err := c.Read(got); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write(got); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// TestEndpointEnds: what the endpoint says after the upgrade reaches Read
// after the bytes before it, as one line naming the cause.
func TestEndpointEnds(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(ctx context.Context, ws *websocket.Conn)
		kind error // nil: io.EOF
		want string
	}{
		{"orderly close", func(ctx context.Context, ws *websocket.Conn) {
			ws.Close(websocket.StatusNormalClosure, "")
		}, nil, ""},
		{"duration", func(ctx context.Context, ws *websocket.Conn) {
			ws.Close(websocket.StatusPolicyViolation, "Maximum tunnel duration reached")
		}, ErrDurationReached, "closed the tunnel to 10.0.1.5:22 (code 1008): Maximum tunnel duration reached"},
		{"security group", func(ctx context.Context, ws *websocket.Conn) {
			ws.Close(websocket.StatusInternalError, "Connection to 10.0.1.5:22 timed out")
		}, ErrUnreachable, "security group must allow TCP port 22"},
		{"text frame", func(ctx context.Context, ws *websocket.Conn) {
			ws.Write(ctx, websocket.MessageText, []byte("something\nwent wrong"))
			ws.Close(websocket.StatusNormalClosure, "")
		}, errOther, "ended the tunnel to 10.0.1.5:22: something went wrong"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := endpoint(t, func(ws *websocket.Conn) {
				ctx := context.Background()
				ws.Write(ctx, websocket.MessageBinary, []byte("SSH-2.0-OpenSSH_9.2\r\n"))
				tt.end(ctx, ws)
			})
			c, err := Dial(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			b, err := io.ReadAll(c)
			if string(b) != "SSH-2.0-OpenSSH_9.2\r\n" {
				t.Errorf("read %q before the end, want the banner", b)
			}
			checkEnd(t, err, tt.kind, tt.want)
		})
	}
}

// errOther marks an *Error of no recognised kind.
var errOther = errors.New("other")

func checkEnd(t *testing.T, err error, kind error, want string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Errorf("err %v, want a clean end of file", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err %T %v, want an *Error", err, err)
	}
	if kind != errOther && !errors.Is(err, kind) || kind == errOther && e.Kind != nil {
		t.Errorf("kind %v, want %v", e.Kind, kind)
	}
	if s := err.Error(); !strings.Contains(s, want) || strings.Contains(s, "\n") {
		t.Errorf("error %q: want one line containing %q", s, want)
	}
}

func TestRefused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
		kind   error
		want   string
	}{
		{"access denied", http.StatusForbidden,
			`{"__type":"AccessDeniedException","message":"User is not authorized to perform ec2-instance-connect:OpenTunnel"}`,
			ErrAccessDenied, "(HTTP 403): AccessDeniedException: User is not authorized"},
		{"no endpoint", http.StatusNotFound, "InstanceConnectEndpoint eice-0123456789abcdef0 does not exist\n",
			ErrNoEndpoint, "check --eice-id"},
		{"limit", http.StatusTooManyRequests, "Too many connections", ErrLimit, "20 concurrent connections"},
		{"other", http.StatusBadGateway, "<html>bad\ngateway</html>", errOther, "(HTTP 502): <html>bad gateway</html> (request id req-1)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("x-amzn-requestid", "req-1")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			cfg := testConfig(srv.Listener.Addr().String())
			cfg.HTTPClient = srv.Client()
			c, err := Dial(t.Context(), cfg)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			checkEnd(t, err, tt.kind, tt.want)
			if !strings.Contains(err.Error(), "refused the tunnel to 10.0.1.5:22") {
				t.Errorf("error %q does not say which tunnel was refused", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not an *Error", err)
			}
			permanent, throttled := tt.kind == ErrAccessDenied || tt.kind == ErrNoEndpoint, tt.kind == ErrLimit
			if e.Permanent() != permanent || e.Throttled() != throttled {
				t.Errorf("Permanent %v, Throttled %v; want %v, %v", e.Permanent(), e.Throttled(), permanent, throttled)
			}
		})
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	cfg := endpoint(t, func(ws *websocket.Conn) {
		ws.Read(context.Background()) // until the client closes
		ws.CloseNow()
	})
	c, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rerr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		rerr <- err
	}()
	c.Close()
	if err := <-rerr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Read ended with %v, want net.ErrClosed", err)
	}
}
