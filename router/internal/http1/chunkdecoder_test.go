package http1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// decodedBody is a chunked body as read off a stream: its data, its trailer fields, where
// it ended (bytes of the stream it took; -1 when it failed) and its error.
type decodedBody struct {
	data    []byte
	trailer http.Header
	end     int
	err     error
	// held is the most the caller had to keep undecoded while it waited for more.
	held int
}

// readChunkedBody reads a chunked body off stream with newBodyReader, through a
// bufio.Reader of size bytes fed pieces of at most maxPiece bytes.
func readChunkedBody(stream []byte, size, maxTrailer, maxPiece int, rng *rand.Rand) decodedBody {
	pr := &pieceReader{data: stream, rng: rng, max: maxPiece}
	br := bufio.NewReaderSize(pr, size)
	b := newBodyReader(br, -1, maxTrailer)
	b.trailer = make(http.Header)
	data, err := io.ReadAll(b)
	r := decodedBody{data: data, trailer: b.trailer, end: -1, err: err}
	if err == nil {
		if !b.done {
			panic("body read whole but not done")
		}
		r.end = len(stream) - len(pr.data) - br.Buffered()
	}
	return r
}

// decodeChunkedBody decodes a chunked body off stream with a ChunkDecoder, fed pieces of
// at most maxPiece bytes, as an event loop would: each into a new buffer with what was
// not consumed before, the old one overwritten.
func decodeChunkedBody(stream []byte, maxLine, maxTrailer, maxPiece int, rng *rand.Rand) decodedBody {
	var d ChunkDecoder
	d.Reset(maxTrailer, maxLine)
	var r decodedBody
	var buf []byte
	read, off := 0, 0
	for {
		c, p, err := d.Decode(buf)
		r.data = append(r.data, p...)
		buf, off = buf[c:], off+c
		switch {
		case err != nil:
			r.end, r.err = -1, err
			return r
		case d.Done():
			r.end, r.trailer = off, d.Trailer()
			return r
		case c > 0 || p != nil:
			continue
		case read == len(stream):
			r.end, r.err = -1, io.ErrUnexpectedEOF
			return r
		}
		r.held = max(r.held, len(buf))
		n := min(1+rng.Intn(maxPiece), len(stream)-read)
		next := append(append(make([]byte, 0, len(buf)+n), buf...), stream[read:read+n]...)
		for i := range buf {
			buf[i] = 'X'
		}
		buf, read = next, read+n
	}
}

// sameDecoding says how the decoder's reading of a body differs from the body reader's.
func sameDecoding(got, want decodedBody) string {
	switch {
	case got.err != want.err:
		return "error " + errString(got.err) + ", the body reader's " + errString(want.err)
	case !bytes.Equal(got.data, want.data):
		return "data " + quote(got.data) + ", the body reader's " + quote(want.data)
	case got.end != want.end:
		return "ends at " + strconv.Itoa(got.end) + ", the body reader at " + strconv.Itoa(want.end)
	case len(got.trailer) > 0 || len(want.trailer) > 0:
		if !reflect.DeepEqual(got.trailer, want.trailer) {
			return "trailer " + quote(got.trailer) + ", the body reader's " + quote(want.trailer)
		}
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return quote(err.Error())
}

func quote(v any) string {
	s := fmt.Sprintf("%q", v)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// chunkedSeeds are chunked bodies, each with what follows it on the connection, that
// the decoder and the body reader must read alike.
func chunkedSeeds() []string {
	next := "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
	seeds := []string{
		"0\r\n\r\n",
		"0\r\n\r\n" + next,
		"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" + next,
		"5;name=value;quoted=\"a b\"\r\nhello\r\nA;x\r\n0123456789\r\n0;last\r\n\r\n",
		"3\r\nabc\r\n0\r\nX-Sum: 123\r\nX-Other:  v \r\nx-sum: 456\r\n\r\n" + next,
		"1388\r\n" + strings.Repeat("abcdefghij", 500) + "\r\n0\r\n\r\n",
		"ffffffffffffffff\r\nabc",
		"10000000000000000\r\nx\r\n0\r\n\r\n",
		"3\r\nabc\r\n",
		"3\r\nabc",
		"3\r\nab",
		"3\r\nabc\r",
		"3\r\nabc\rX0\r\n\r\n",
		"3\r\nabcX\n0\r\n\r\n",
		"3\nabc\r\n0\r\n\r\n",
		"3\r;x\r\nabc\r\n0\r\n\r\n",
		"0\n\r\n",
		"0\r\n\n" + next,
		"0\r\nX-A: 1\n\r\n",
		"0\r\nX-A: 1\r\n",
		"0\r\nnot a field\r\n\r\n",
		"0\r\nX-A: 1\r\n 2\r\n\r\n",
		"0\r\nX-A: 1\r2\r\n\r\n",
		"0\r\n: empty name\r\n\r\n",
		"0\r\nX-A: 1\r\n\r\r\n",
		"0\r\n" + strings.Repeat("X-A: 1\r\n", 100) + "\r\n" + next,
		"0\r\nX-Long: " + strings.Repeat("v", 5000) + "\r\n\r\n",
		"0\r\nX-Long: " + strings.Repeat("v", 20000) + "\r\n\r\n",
		"5;" + strings.Repeat("e", 4090) + "\r\nhello\r\n0\r\n\r\n",
		"5;" + strings.Repeat("e", 4091) + "\r\nhello\r\n0\r\n\r\n",
		"5;" + strings.Repeat("e", 4092) + "\r\nhello\r\n0\r\n\r\n",
		"5;" + strings.Repeat("e", 4093) + "\r\nhello\r\n0\r\n\r\n",
		"5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n",
		"5;" + strings.Repeat("e", 5000) + "\nhello\r\n0\r\n\r\n",
		strings.Repeat("1;"+strings.Repeat("e", 100)+"\r\nx\r\n", 500) + "0\r\n\r\n",
		strings.Repeat("1;"+strings.Repeat("e", 20)+"\r\nx\r\n", 1000) + "0\r\n\r\n",
		strings.Repeat("0001\r\nx\r\n", 100) + "0\r\n\r\n",
		"1\r\n\n\r\n0\r\n\r\n",
		"2\r\n\r\n\r\n0\r\n\r\n",
		"0000000000000000\r\n\r\n",
		"00000000000000000\r\n\r\n",
		"3 \t\r\nabc\r\n0\t\r\n\r\n",
		"",
		"\r\n",
		"0",
		"0\r",
		"0\r\n",
		"0\r\n\r",
	}
	for _, line := range append(append([]string{}, goodChunkLines...), badChunkLines...) {
		seeds = append(seeds,
			line+"\r\nabc\r\n0\r\n\r\n"+next,
			"3\r\nabc\r\n"+line+"\r\nabc\r\n0\r\n\r\n",
			strings.Replace(line, "3", "0", 1)+"\r\n\r\n"+next)
	}
	return seeds
}

// lineBounds are the reader sizes the decoder is checked at: the smallest bufio.Reader,
// a small one, the server's and the router's for dynos.
var lineBounds = []int{16, 64, readerSize, 16 << 10}

// TestChunkDecoderAgreesWithBodyReader: on every seed, at every line bound, with a few
// trailer bounds and in pieces of many sizes, the decoder reads what the body reader
// reads, fails where it fails, and ends where it ends.
func TestChunkDecoderAgreesWithBodyReader(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(1))
	for i, seed := range chunkedSeeds() {
		for _, size := range lineBounds {
			for _, maxTrailer := range []int{0, 2, 20, 800, 64 << 10} {
				for _, maxPiece := range []int{1, 2, 7, 4096} {
					if maxPiece < 7 && len(seed) > 1000 {
						continue // the copies of a test that feeds bytes one by one take long
					}
					want := readChunkedBody([]byte(seed), size, maxTrailer, maxPiece, rng)
					got := decodeChunkedBody([]byte(seed), size, maxTrailer, maxPiece, rng)
					if d := sameDecoding(got, want); d != "" {
						t.Fatalf("seed %d %s, line bound %d, trailer bound %d, pieces of %d: %s",
							i, quote(seed), size, maxTrailer, maxPiece, d)
					}
					if got.held >= max(size, 2) {
						t.Fatalf("seed %d, line bound %d: the caller held %d bytes undecoded", i, size, got.held)
					}
				}
			}
		}
	}
}

func FuzzChunkDecoder(f *testing.F) {
	for i, s := range chunkedSeeds() {
		f.Add([]byte(s), int64(i), uint16(64<<10-1), uint8(i))
	}
	f.Add([]byte("0\r\nX: 1\r\n\r\n"), int64(0), uint16(8), uint8(2))
	f.Add([]byte("0\r\nX: 1\r\n\r\n"), int64(0), uint16(7), uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, seed int64, maxTrailer uint16, sel uint8) {
		size := lineBounds[sel%4]
		maxPiece := []int{1, 3, 17, 4096}[sel/4%4]
		if len(stream) > 2048 {
			maxPiece = max(maxPiece, 512) // tiny pieces of a long stream make slow runs
		}
		want := readChunkedBody(stream, size, int(maxTrailer), maxPiece, rand.New(rand.NewSource(seed)))
		got := decodeChunkedBody(stream, size, int(maxTrailer), maxPiece, rand.New(rand.NewSource(seed+1)))
		if d := sameDecoding(got, want); d != "" {
			t.Fatalf("line bound %d, trailer bound %d, pieces of %d: %s", size, maxTrailer, maxPiece, d)
		}
		if got.held >= max(size, 2) {
			t.Fatalf("line bound %d: the caller held %d bytes undecoded", size, got.held)
		}
	})
}

// TestChunkDecoder: bodies decoded whole, in every split in two and byte by byte.
func TestChunkDecoder(t *testing.T) {
	t.Parallel()
	next := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name       string
		stream     string
		maxTrailer int
		data       string
		trailer    http.Header
		err        error
	}{
		{name: "empty", stream: "0\r\n\r\n" + next, maxTrailer: 100},
		{name: "chunks", stream: "5\r\nhello\r\n1;a=b\r\n \r\n5\r\nworld\r\n0\r\n\r\n" + next, maxTrailer: 100, data: "hello world"},
		{name: "upper-case hex", stream: "A\r\n0123456789\r\n0\r\n\r\n", maxTrailer: 100, data: "0123456789"},
		{name: "trailer", stream: "1\r\nx\r\n0\r\nX-Sum: 1\r\nx-sum: 2\r\nOther:  v \r\n\r\n" + next, maxTrailer: 100,
			data: "x", trailer: http.Header{"X-Sum": {"1", "2"}, "Other": {"v"}}},
		{name: "trailer at its bound", stream: "0\r\nX: 1\r\n\r\n", maxTrailer: 8, trailer: http.Header{"X": {"1"}}},
		{name: "trailer over its bound", stream: "0\r\nX: 1\r\n\r\n", maxTrailer: 7, err: errBadTrailer},
		{name: "no room for the blank line", stream: "0\r\n\r\n", maxTrailer: 1, err: errBadTrailer},
		{name: "bad chunk size", stream: "zz\r\nhello\r\n0\r\n\r\n", maxTrailer: 100, err: errChunkLine},
		{name: "bad extension", stream: "3;\x01\r\nabc\r\n0\r\n\r\n", maxTrailer: 100, err: errChunkLine},
		{name: "bare LF after the size", stream: "5\nhello\r\n0\r\n\r\n", maxTrailer: 100, err: errChunkLine},
		{name: "bare CR in a chunk line", stream: "5\r;x\r\nhello\r\n0\r\n\r\n", maxTrailer: 100, err: errChunkLine},
		{name: "bare LF after data", stream: "5\r\nhello\n0\r\n\r\n", maxTrailer: 100, data: "hello", err: errChunkEnd},
		{name: "data longer than its size", stream: "3\r\nhello\r\n0\r\n\r\n", maxTrailer: 100, data: "hel", err: errChunkEnd},
		{name: "size overflow", stream: "10000000000000000\r\nx\r\n0\r\n\r\n", maxTrailer: 100, err: errChunkLine},
		{name: "chunk line too long", stream: "5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n", maxTrailer: 100, err: errChunkLineTooLong},
		{name: "too much overhead", stream: strings.Repeat("1;"+strings.Repeat("e", 100)+"\r\nx\r\n", 500) + "0\r\n\r\n",
			maxTrailer: 100, data: strings.Repeat("x", 190), err: errChunkOverhead},
		{name: "trailer ended by a bare LF", stream: "0\r\n\n" + next, maxTrailer: 100, err: errBadTrailer},
		{name: "trailer line ended by a bare LF", stream: "0\r\nX-A: 1\n\r\n", maxTrailer: 100, err: errBadTrailer},
		{name: "trailer obs-fold", stream: "0\r\nX-A: 1\r\n 2\r\n\r\n", maxTrailer: 100, err: errBadTrailer},
		{name: "cut short in data", stream: "5\r\nhel", maxTrailer: 100, data: "hel", err: io.ErrUnexpectedEOF},
		{name: "cut short in the trailer", stream: "0\r\nX-A: 1\r\n", maxTrailer: 100, err: io.ErrUnexpectedEOF},
	} {
		stream := []byte(tc.stream)
		check := func(how string, got decodedBody) {
			t.Helper()
			if got.err != tc.err {
				t.Fatalf("%s, %s: error %v, want %v", tc.name, how, got.err, tc.err)
			}
			if string(got.data) != tc.data {
				t.Fatalf("%s, %s: data %q, want %q", tc.name, how, got.data, tc.data)
			}
			if tc.err != nil {
				return
			}
			if !reflect.DeepEqual(got.trailer, tc.trailer) {
				t.Fatalf("%s, %s: trailer %v, want %v", tc.name, how, got.trailer, tc.trailer)
			}
			if rest := tc.stream[got.end:]; rest != "" && rest != next {
				t.Fatalf("%s, %s: %q left for the next message", tc.name, how, rest)
			}
		}
		rng := rand.New(rand.NewSource(1))
		check("whole", decodeChunkedBody(stream, 0, tc.maxTrailer, len(stream)+1, rng))
		check("byte by byte", decodeChunkedBody(stream, 0, tc.maxTrailer, 1, rng))
		for i := 0; i <= len(stream) && len(stream) < 1000; i++ {
			check("split at "+strconv.Itoa(i), decodeSplit(stream, i, tc.maxTrailer))
		}
	}
}

// decodeSplit decodes stream arriving in two reads, split at i.
func decodeSplit(stream []byte, i, maxTrailer int) decodedBody {
	d := NewChunkDecoder(maxTrailer)
	var r decodedBody
	buf := append([]byte(nil), stream[:i]...)
	off, more := 0, true
	for {
		c, p, err := d.Decode(buf)
		r.data = append(r.data, p...)
		buf, off = buf[c:], off+c
		switch {
		case err != nil:
			r.end, r.err = -1, err
			return r
		case d.Done():
			r.end, r.trailer = off, d.Trailer()
			return r
		case c > 0 || p != nil:
		case more:
			buf, more = append(append([]byte(nil), buf...), stream[i:]...), false
		default:
			r.end, r.err = -1, io.ErrUnexpectedEOF
			return r
		}
	}
}

// TestChunkDecoderPassesDataOn: the data of a chunk goes on as it arrives, not once the
// chunk is whole; a chunk line, the CRLF after data and a trailer line that arrive in
// parts are waited for, left unconsumed.
func TestChunkDecoderPassesDataOn(t *testing.T) {
	t.Parallel()
	d := NewChunkDecoder(100)
	step := func(in string, wantConsumed int, wantData string) {
		t.Helper()
		c, p, err := d.Decode([]byte(in))
		if err != nil || c != wantConsumed || string(p) != wantData {
			t.Fatalf("Decode(%q) = %d, %q, %v; want %d, %q, nil", in, c, p, err, wantConsumed, wantData)
		}
	}
	step("1", 0, "")
	step("10", 0, "")
	step("10\r", 0, "")
	step("10\r\n", 4, "")
	step("", 0, "")
	step("0123", 4, "0123")
	step("456789abcdef\r", 12, "456789abcdef")
	step("\r", 0, "")
	step("\r\n", 2, "")
	step("0\r\nX-A", 3, "")
	step("X-A: 1\r", 0, "")
	step("X-A: 1\r\n\r", 8, "")
	if d.Done() {
		t.Fatal("done before the trailer section's end")
	}
	step("\r\nGET", 2, "")
	if !d.Done() {
		t.Fatal("not done after the trailer section")
	}
	if got := d.Trailer(); !reflect.DeepEqual(got, http.Header{"X-A": {"1"}}) {
		t.Fatalf("trailer %v", got)
	}
	if c, p, err := d.Decode([]byte("GET")); c != 0 || p != nil || err != io.EOF {
		t.Fatalf("Decode after the end: %d, %q, %v; want io.EOF", c, p, err)
	}
}

// TestChunkDecoderBounds: a line in part fails once no bufio.Reader of the line bound
// could hold it, and a failure is final.
func TestChunkDecoderBounds(t *testing.T) {
	t.Parallel()
	var d ChunkDecoder
	d.Reset(100, 64)
	if c, _, err := d.Decode(bytes.Repeat([]byte("1"), 63)); c != 0 || err != nil {
		t.Fatalf("63 bytes of a chunk line: %d, %v", c, err)
	}
	if _, _, err := d.Decode(bytes.Repeat([]byte("1"), 64)); err != errChunkLineTooLong {
		t.Fatalf("64 bytes of a chunk line: %v, want %v", err, errChunkLineTooLong)
	}
	if _, _, err := d.Decode([]byte("0\r\n\r\n")); err != errChunkLineTooLong {
		t.Fatalf("after a failure: %v", err)
	}
	d.Reset(100, 64)
	if c, _, err := d.Decode([]byte("0\r\n" + strings.Repeat("a", 63))); c != 3 || err != nil {
		t.Fatalf("63 bytes of a trailer line: %d, %v", c, err)
	}
	if _, _, err := d.Decode([]byte(strings.Repeat("a", 64))); err != errBadTrailer {
		t.Fatalf("64 bytes of a trailer line: %v, want %v", err, errBadTrailer)
	}
	d.Reset(100, 0)
	if c, _, err := d.Decode([]byte("0;" + strings.Repeat("e", readerSize-4) + "\r\n\r\n")); c != readerSize+2 || err != nil || !d.Done() {
		t.Fatalf("a chunk line of the server's bound: %d, %v", c, err)
	}
	d.Reset(100, 0)
	if _, _, err := d.Decode([]byte("0;" + strings.Repeat("e", readerSize-3) + "\r\n\r\n")); err != errChunkLineTooLong {
		t.Fatalf("a chunk line over the server's bound: %v", err)
	}
}

// TestChunkDecoderAllocatesNothing: a body without trailer costs no allocation.
func TestChunkDecoderAllocatesNothing(t *testing.T) {
	body := []byte("5\r\nhello\r\n6;x=y\r\n world\r\n1000\r\n" + strings.Repeat("z", 4096) + "\r\n0\r\n\r\n")
	var d ChunkDecoder
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(100, 0)
		in := body
		for !d.Done() {
			c, _, err := d.Decode(in)
			if err != nil || c == 0 {
				t.Fatalf("%d, %v", c, err)
			}
			in = in[c:]
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per body", allocs)
	}
}

func BenchmarkChunkDecoder(b *testing.B) {
	body := []byte(strings.Repeat("1000\r\n"+strings.Repeat("z", 4096)+"\r\n", 16) + "0\r\n\r\n")
	var d ChunkDecoder
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		d.Reset(100, 0)
		for in := body; !d.Done(); {
			c, _, _ := d.Decode(in)
			in = in[c:]
		}
	}
}
