package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Dial opens cfg.Transport, runs the SSH handshake over it, and starts the
// returned Client's keepalive. It gives up after cfg.HandshakeTimeout or when
// ctx is done. Errors are one line: a refused host key is returned as is
// (*HostKeyError), refused credentials as *AuthError, a failed
// ProxyCommand as *ProxyExitError.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	log := slog.New(slog.DiscardHandler)
	if cfg.Logger != nil {
		log = cfg.Logger.With("component", "tunnel")
	}
	timeout := fmt.Errorf("timed out after %v: %w", cfg.HandshakeTimeout, context.DeadlineExceeded)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	clock := time.AfterFunc(cfg.HandshakeTimeout, func() { cancel(timeout) })
	defer clock.Stop()
	// The host key check may ask the person (HostKeys.Prompt), who may
	// take a while to compare fingerprints: the clock stops meanwhile, and
	// the rest of the handshake gets a full HandshakeTimeout after it.
	hostKey := cfg.HostKeyCallback
	cfg.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		if clock.Stop() {
			defer clock.Reset(cfg.HandshakeTimeout)
		}
		return hostKey(host, remote, key)
	}

	raw, err := cfg.Transport(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("tunnel: connect to %s: %w", cfg.Addr, context.Cause(ctx))
		}
		return nil, err
	}
	conn := newMeteredConn(raw)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sconn, chans, reqs, err := ssh.NewClientConn(conn, cfg.Addr, cfg.clientConfig())
	if !stop() { // ctx ended during the handshake, and conn is closed
		if err == nil {
			sconn.Close()
		}
		return nil, fmt.Errorf("tunnel: ssh handshake with %s: %w", cfg.Addr, context.Cause(ctx))
	}
	if err != nil {
		return nil, cfg.handshakeError(conn, err)
	}
	c := newClient(cfg, log, conn, ssh.NewClient(sconn, chans, reqs))
	c.start()
	log.Info("ssh connected", "addr", cfg.Addr, "user", cfg.User, "server", c.RemoteVersion())
	return c, nil
}

func (cfg *Config) check() error {
	var missing []string
	if cfg.User == "" {
		missing = append(missing, "User")
	}
	if cfg.Addr == "" {
		missing = append(missing, "Addr")
	}
	if cfg.Transport == nil {
		missing = append(missing, "Transport")
	}
	if cfg.HostKeyCallback == nil {
		missing = append(missing, "HostKeyCallback")
	}
	if len(missing) > 0 {
		return fmt.Errorf("tunnel: config: missing %s", strings.Join(missing, ", "))
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return fmt.Errorf("tunnel: config: Addr: %w", err)
	}
	return nil
}

func (cfg *Config) setDefaults() {
	if cfg.KeepAliveInterval == 0 {
		cfg.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if cfg.KeepAliveCountMax <= 0 {
		cfg.KeepAliveCountMax = DefaultKeepAliveCountMax
	}
	if cfg.MaxPendingOpens <= 0 {
		cfg.MaxPendingOpens = DefaultMaxPendingOpens
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Ciphers == nil {
		cfg.Ciphers = preferredCiphers()
	}
}

func (cfg *Config) clientConfig() *ssh.ClientConfig {
	cc := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              cfg.Auth,
		HostKeyCallback:   cfg.HostKeyCallback,
		HostKeyAlgorithms: cfg.HostKeyAlgorithms,
	}
	cc.Ciphers = cfg.Ciphers
	return cc
}

// handshakeError turns an error from ssh.NewClientConn over conn into one
// clear line.
func (cfg *Config) handshakeError(conn *meteredConn, err error) error {
	var hk *HostKeyError
	var pe *ProxyExitError
	switch {
	case errors.As(err, &hk):
		return hk
	case errors.As(err, &pe):
		return pe
	case isAuthFailure(err):
		return &AuthError{User: cfg.User, Addr: cfg.Addr, Methods: attemptedMethods(err),
			Sources: cfg.AuthSources, Err: err}
	case !conn.readFailed.Load() && isDamage(err):
		relay, _ := conn.Conn.(Relay)
		by := ""
		if relay != nil {
			by = relay.Carrier()
		}
		err = &CorruptError{By: by, Err: err}
	}
	return fmt.Errorf("tunnel: ssh handshake with %s: %w", cfg.Addr, err)
}

// isAuthFailure reports whether err says the server refused every
// credential. x/crypto/ssh has no error type for it, as of v0.58.0.
func isAuthFailure(err error) bool {
	s := err.Error()
	return strings.Contains(s, "ssh: unable to authenticate") ||
		strings.Contains(s, "Too many authentication failures")
}

// attemptedMethods extracts the methods from x/crypto/ssh's "attempted
// methods [none publickey]", without "none".
func attemptedMethods(err error) []string {
	_, rest, ok := strings.Cut(err.Error(), "attempted methods [")
	if !ok {
		return nil
	}
	list, _, _ := strings.Cut(rest, "]")
	var methods []string
	for _, m := range strings.Fields(list) {
		if m != "none" {
			methods = append(methods, m)
		}
	}
	return methods
}
