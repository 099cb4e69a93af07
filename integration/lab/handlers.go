//go:build linux

package lab

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
)

// The test protocols. Each handler serves one connection.

// Echo copies everything it receives back, and half-closes after EOF.
func Echo(c net.Conn) {
	io.Copy(c, c)
	closeWrite(c)
}

// Sink reads until EOF, then answers "<bytes> <sha256 hex>\n": proof that
// every byte arrived, in order, and that the client's half-close did too.
func Sink(c net.Conn) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		fmt.Fprintf(c, "error %v\n", err)
		return
	}
	fmt.Fprintf(c, "%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
}

// Source reads a line "<bytes> <seed>\n" and sends that many bytes of
// Pattern(seed), then closes.
func Source(c net.Conn) {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	var n int64
	var seed uint64
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "%d %d", &n, &seed); err != nil {
		fmt.Fprintf(c, "error %v\n", err)
		return
	}
	io.Copy(c, io.LimitReader(Pattern(seed), n))
	closeWrite(c)
}

// Pattern returns an endless deterministic stream of pseudo-random bytes.
func Pattern(seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return rand.NewChaCha8(key)
}

// PatternSum returns the length and SHA-256 (hex) of n bytes of Pattern(seed),
// the answer Sink gives for them.
func PatternSum(seed uint64, n int64) string {
	h := sha256.New()
	io.Copy(h, io.LimitReader(Pattern(seed), n))
	return fmt.Sprintf("%d %s", n, hex.EncodeToString(h.Sum(nil)))
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
