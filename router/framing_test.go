package router

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// pipeConn feeds scripted chunks to a framingConn.
type chunkConn struct {
	net.Conn
	chunks [][]byte
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if n == len(c.chunks[0]) {
		c.chunks = c.chunks[1:]
	} else {
		c.chunks[0] = c.chunks[0][n:]
	}
	return n, nil
}

func (c *chunkConn) RemoteAddr() net.Addr            { return &net.TCPAddr{} }
func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }

// through runs input through a framingConn in random pieces and returns what the
// server would read.
func through(in []byte, rng *rand.Rand) ([]byte, bool) {
	var chunks [][]byte
	for rest := in; len(rest) > 0; {
		n := 1 + rng.IntN(len(rest))
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
	}
	rejected := false
	fc := &framingConn{Conn: &chunkConn{chunks: chunks}, maxHead: 8192, rejected: func(string) { rejected = true }}
	out, _ := io.ReadAll(readerFunc(func(p []byte) (int, error) { return fc.Read(p[:1+rng.IntN(len(p))]) }))
	return out, rejected
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

var framingSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /y HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: y\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
	"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	"\r\n\r\nGET / HTTP/1.0\n\n",
	"garbage without end",
}

func TestFramingIsTransparent(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range framingSeeds {
		for i := 0; i < 50; i++ {
			out, rejected := through([]byte(s), rng)
			if rejected || !bytes.Equal(out, []byte(s)) {
				t.Fatalf("%q came out as %q (rejected %v)", s, out, rejected)
			}
		}
	}
	amb := "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	for i := 0; i < 50; i++ {
		out, rejected := through([]byte("GET / HTTP/1.1\r\n\r\n"+amb), rng)
		if !rejected || !bytes.Equal(out, append([]byte("GET / HTTP/1.1\r\n\r\n"), rejectHead...)) {
			t.Fatalf("ambiguous request came out as %q (rejected %v)", out, rejected)
		}
	}
}

func FuzzFraming(f *testing.F) {
	for _, s := range framingSeeds {
		f.Add([]byte(s), uint64(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		out, rejected := through(in, rand.New(rand.NewPCG(seed, 7)))
		if !rejected && !bytes.Equal(out, in) {
			t.Fatalf("%q came out as %q", in, out)
		}
	})
}
