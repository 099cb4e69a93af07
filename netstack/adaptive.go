package netstack

// Adaptive relay buffers: src -> [4 KiB, 32 KiB or 256 KiB] -> dst, one
// direction of a flow.
//
// A copy holds its buffer while it is blocked in Read, and most flows are
// idle most of the time: 5,000 idle flows must stay cheap. Each read
// therefore gets a buffer, from the pool of its size, just larger than
// the read before it, up to a maximum per direction: 4 KiB while reads are
// short (an idle or interactive flow), larger ones only while reads keep
// filling them. An SSH channel's Read returns everything queued, across
// SSH packets, up to the buffer's size, so while a download keeps the
// channel backlogged a 256 KiB buffer means fewer, larger gonet writes, and
// gVisor builds fuller 64 KiB GSO segments with fewer lock round trips per
// byte. Measured against a fixed 32 KiB buffer (labbench, netns lab, 2
// cores, medians of 3 in the same minutes): iperf3 -R 2.07 -> 2.50 and
// 1.75 -> 1.94 Gbit/s in two rounds; pgbench unchanged (its replies never
// fill 32 KiB). With 32 KiB as the smallest buffer, 5,000 idle flows held
// 400 MB of vpcvpn's heap and 260-285 MiB resident (integration TestLoad,
// over the 256 MiB it allows); with 4 KiB, 107 MB and 234 MiB.

import (
	"errors"
	"io"
	"sync"
)

// Relay buffer sizes, smallest first.
const (
	relaySmallBufSize = 4 << 10   // while reads are short: idle or interactive
	relayBufSize      = 32 << 10  // x/crypto/ssh's channelMaxPacket
	relayBigBufSize   = 256 << 10 // far->app while the channel is backlogged
)

var (
	relaySmallBufPool = sync.Pool{New: func() any { return new([relaySmallBufSize]byte) }}
	relayBufPool      = sync.Pool{New: func() any { return new([relayBufSize]byte) }}
	relayBigBufPool   = sync.Pool{New: func() any { return new([relayBigBufSize]byte) }}
)

// getRelayBuf returns a pooled buffer of size, one of the relay buffer
// sizes.
func getRelayBuf(size int) []byte {
	switch size {
	case relaySmallBufSize:
		return relaySmallBufPool.Get().(*[relaySmallBufSize]byte)[:]
	case relayBufSize:
		return relayBufPool.Get().(*[relayBufSize]byte)[:]
	}
	return relayBigBufPool.Get().(*[relayBigBufSize]byte)[:]
}

// putRelayBuf returns a buffer from getRelayBuf to its pool.
func putRelayBuf(b []byte) {
	switch len(b) {
	case relaySmallBufSize:
		relaySmallBufPool.Put((*[relaySmallBufSize]byte)(b))
	case relayBufSize:
		relayBufPool.Put((*[relayBufSize]byte)(b))
	case relayBigBufSize:
		relayBigBufPool.Put((*[relayBigBufSize]byte)(b))
	}
}

// nextRelayBufSize returns the buffer size for the read after one of n
// bytes: the smallest size larger than n, at most maxSize.
func nextRelayBufSize(n, maxSize int) int {
	for _, size := range [...]int{relaySmallBufSize, relayBufSize} {
		if n < size || size >= maxSize {
			return size
		}
	}
	return relayBigBufSize
}

// copyAdaptive copies src to dst until EOF like io.CopyBuffer, choosing the
// buffer of each read as described above, up to maxBuf (a relay buffer
// size). It returns nil at EOF. While it reads with more than the smallest
// buffer, the copy is counted in bulk (if not nil) as moving data in bulk,
// and from then until it ends as open.
func copyAdaptive(dst io.Writer, src io.Reader, maxBuf int, bulk *bulkCount) error {
	buf := getRelayBuf(relaySmallBufSize)
	counted := bulkCopy{count: bulk}
	defer func() {
		counted.end()
		putRelayBuf(buf)
	}()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			nw, werr := dst.Write(buf[:n])
			if werr == nil && nw < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if size := nextRelayBufSize(n, maxBuf); size != len(buf) {
			counted.set(size != relaySmallBufSize)
			putRelayBuf(buf)
			buf = getRelayBuf(size)
		}
	}
}
