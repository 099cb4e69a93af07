package tunnel

import (
	"errors"
	"io"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrConnectionLost is what a channel's Read returns, instead of io.EOF,
// when its data stopped because the SSH connection ended: the stream was
// cut, not finished, and whoever relays it should reset rather than close.
var ErrConnectionLost = errors.New("tunnel: ssh connection lost")

// chanConn is a direct-tcpip channel as a net.Conn, with x/crypto/ssh's
// zero addresses and without deadlines as Client.Dial returns it, that
// tells a cut stream from an ended one. x/crypto/ssh ends every channel's
// reads with io.EOF when its connection drops; it does so after the
// transport's Read failed, or after end ran, both of which c records first
// (markLost).
type chanConn struct {
	ssh.Channel
	c *Client
}

var _ net.Conn = (*chanConn)(nil)

func (cc *chanConn) Read(p []byte) (int, error) {
	n, err := cc.Channel.Read(p)
	if err == io.EOF && cc.c.lost() {
		err = ErrConnectionLost
	}
	return n, err
}

// errNoDeadline is x/crypto/ssh's answer to deadlines on a channel.
var errNoDeadline = errors.New("ssh: tcpChan: deadline not supported")

func (*chanConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4zero} }
func (*chanConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4zero} }
func (*chanConn) SetDeadline(time.Time) error      { return errNoDeadline }
func (*chanConn) SetReadDeadline(time.Time) error  { return errNoDeadline }
func (*chanConn) SetWriteDeadline(time.Time) error { return errNoDeadline }

// lost reports whether the connection has ended or its transport failed.
func (c *Client) lost() bool { return c.isLost.Load() }
