package tunnel

import (
	"errors"
	"io"
	"net"
)

// ErrConnectionLost is what a channel's Read returns, instead of io.EOF,
// when its data stopped because the SSH connection ended: the stream was
// cut, not finished, and whoever relays it should reset rather than close.
var ErrConnectionLost = errors.New("tunnel: ssh connection lost")

// chanConn is a direct-tcpip channel that tells a cut stream from an
// ended one. x/crypto/ssh ends every channel's reads with io.EOF when its
// connection drops; it does so after the transport's Read failed, or after
// end ran, both of which c records first.
type chanConn struct {
	net.Conn // x/crypto's channel conn
	c        *Client
}

func (cc *chanConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	if err == io.EOF && cc.c.lost() {
		err = ErrConnectionLost
	}
	return n, err
}

// CloseWrite half-closes the channel (SSH_MSG_CHANNEL_EOF).
func (cc *chanConn) CloseWrite() error {
	if cw, ok := cc.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return cc.Conn.Close()
}

// lost reports whether the connection has ended or its transport failed.
func (c *Client) lost() bool {
	select {
	case <-c.ended:
		return true
	default:
		return c.conn.failed.Load()
	}
}
