package router

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2 is an HTTP/2 client made of a framer, to send what a well-behaved client never
// does.
type rawH2 struct {
	t  *testing.T
	c  *tls.Conn
	fr *http2.Framer
	wb bytes.Buffer
	he *hpack.Encoder
	// settings are the server's SETTINGS.
	settings map[http2.SettingID]uint32
}

func dialRawH2(t *testing.T, tr *tlsRouter) *rawH2 {
	t.Helper()
	c, err := tls.Dial("tcp", tr.TLSAddr(), &tls.Config{RootCAs: tr.ca.Pool, ServerName: "shop.localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q, want h2", p)
	}
	h := &rawH2{t: t, c: c, fr: http2.NewFramer(c, c), settings: map[http2.SettingID]uint32{}}
	h.he = hpack.NewEncoder(&h.wb)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	_ = sf.ForeachSetting(func(s http2.Setting) error { h.settings[s.ID] = s.Val; return nil })
	if err := h.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return h
}

// block encodes a GET of path on host as a header block.
func (h *rawH2) block(host, path string, extra ...string) []byte {
	h.wb.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", host}, {":path", path}} {
		_ = h.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		_ = h.he.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return append([]byte(nil), h.wb.Bytes()...)
}

func (h *rawH2) get(id uint32, host, path string) {
	h.t.Helper()
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block(host, path), EndStream: true, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
}

// readUntil reads frames until one satisfies done, the connection ends, or 10 s pass.
func (h *rawH2) readUntil(done func(http2.Frame) bool) (http2.Frame, error) {
	_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		if done(f) {
			return f, nil
		}
	}
}

// heldBackend is a dyno that holds each request until release is closed.
func heldBackend(t *testing.T) (*backend, chan struct{}) {
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "ok")
	})
	return b, release
}

func TestH2ConcurrentStreamsLimit(t *testing.T) {
	tr := startTLSRouter(t, func(c *Config) { c.MaxStreams = 4 })
	b, release := heldBackend(t)
	tr.SetApp("shop", []Instance{b.instance("web.1")})
	h := dialRawH2(t, tr)
	if got := h.settings[http2.SettingMaxConcurrentStreams]; got != 4 {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want 4", got)
	}
	for i := uint32(0); i < 4; i++ {
		h.get(1+2*i, "shop.localhost", fmt.Sprintf("/%d", i))
	}
	waitFor(t, "one stream at the dyno and three queued", func() bool { return tr.waiting("shop") == 3 && b.inflight.Load() == 1 })
	h.get(9, "shop.localhost", "/over")
	f, err := h.readUntil(func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok })
	if err != nil {
		t.Fatalf("no RST_STREAM for the fifth stream: %v", err)
	}
	if rst := f.(*http2.RSTStreamFrame); rst.StreamID != 9 || rst.ErrCode != http2.ErrCodeRefusedStream && rst.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("got %v, want stream 9 refused", rst)
	}
	if w := tr.waiting("shop"); w != 3 {
		t.Errorf("%d requests queued after the refused stream, want 3", w)
	}
	close(release)
	ended := map[uint32]bool{}
	if _, err := h.readUntil(func(f http2.Frame) bool {
		if f.Header().Flags.Has(http2.FlagDataEndStream) && f.Header().Type == http2.FrameData {
			ended[f.Header().StreamID] = true
		}
		return len(ended) == 4
	}); err != nil {
		t.Fatalf("the four streams did not all end: %v (ended %v)", err, ended)
	}
}

func TestH2RapidResetFlood(t *testing.T) {
	const streams = 4
	tr := startTLSRouter(t, func(c *Config) { c.MaxStreams = streams })
	b, release := heldBackend(t)
	tr.SetApp("shop", []Instance{b.instance("web.1")})
	h := dialRawH2(t, tr)
	// Open and reset streams as fast as the connection takes them (CVE-2023-44487).
	var writeErr error
	id := uint32(1)
	sent := 0
	for ; sent < 5000; sent++ {
		if writeErr = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block("shop.localhost", "/"), EndStream: true, EndHeaders: true}); writeErr != nil {
			break
		}
		if writeErr = h.fr.WriteRSTStream(id, http2.ErrCodeCancel); writeErr != nil {
			break
		}
		id += 2
		if w := tr.waiting("shop"); w > streams {
			t.Fatalf("%d requests queued from one connection limited to %d streams", w, streams)
		}
	}
	var ga *http2.GoAwayFrame
	_, err := h.readUntil(func(f http2.Frame) bool {
		g, ok := f.(*http2.GoAwayFrame)
		ga = g
		return ok
	})
	if ga == nil {
		t.Fatalf("after %d reset streams (write error %v): no GOAWAY, read error %v", sent, writeErr, err)
	}
	if ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", ga.ErrCode)
	}
	t.Logf("GOAWAY after %d streams opened and reset", sent)
	// The reset streams leave the queue, and the dyno held at most one of them.
	waitFor(t, "the queue empty", func() bool { return tr.waiting("shop") == 0 })
	if n := b.served.Load(); n > 1 {
		t.Errorf("the dyno got %d of the reset requests", n)
	}
	close(release)
	if resp, body := get(t, tr.client(true), "https://shop.localhost/", nil); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("a new client after the flood: %s %q", resp.Status, body)
	}
}

func TestH2ContinuationFlood(t *testing.T) {
	tr := startTLSRouter(t, func(c *Config) { c.MaxHeaderBytes = 16 << 10 })
	b := newBackend(t, nil)
	tr.SetApp("shop", []Instance{b.instance("web.1")})
	h := dialRawH2(t, tr)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("shop.localhost", "/"), EndHeaders: false}); err != nil {
		t.Fatal(err)
	}
	// Endless CONTINUATION frames, each a new header field, never ending the block.
	var mu sync.Mutex
	written := 0
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			frag := h.blockField(fmt.Sprintf("x-flood-%d", i), strings.Repeat("a", 1000))
			_ = h.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := h.fr.WriteContinuation(1, false, frag); err != nil {
				done <- err
				return
			}
			mu.Lock()
			written += len(frag)
			over := written > 64<<20
			mu.Unlock()
			if over {
				done <- errors.New("the router took 64 MiB of one header block")
				return
			}
		}
	}()
	_, rerr := h.readUntil(func(f http2.Frame) bool { return false })
	var ne net.Error
	if rerr == nil || errors.As(rerr, &ne) && ne.Timeout() {
		t.Fatalf("the connection stayed open: %v", rerr)
	}
	werr := <-done
	mu.Lock()
	defer mu.Unlock()
	if werr != nil && strings.Contains(werr.Error(), "64 MiB") {
		t.Fatal(werr)
	}
	t.Logf("connection closed (%v) after %d bytes of CONTINUATION", rerr, written)
	if n := b.served.Load(); n != 0 {
		t.Errorf("the dyno got %d requests", n)
	}
}

// blockField encodes one header field on its own, as a fragment of a header block.
func (h *rawH2) blockField(name, value string) []byte {
	h.wb.Reset()
	_ = h.he.WriteField(hpack.HeaderField{Name: name, Value: value})
	return append([]byte(nil), h.wb.Bytes()...)
}

// TestH2StreamsQueueInOrder: streams of one connection wait in the app's queue in the
// order they came, exactly as HTTP/1.1 requests do, and the dyno gets each over HTTP/1.1.
func TestH2StreamsQueueInOrder(t *testing.T) {
	tr := startTLSRouter(t, nil)
	var mu sync.Mutex
	var order []string
	gate := make(chan struct{}, 100)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		<-gate
		mu.Lock()
		order = append(order, r.URL.Path+" "+r.Proto)
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	tr.SetApp("shop", []Instance{b.instance("web.1")})
	c := tr.client(true)
	const n = 20
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := get(t, c, fmt.Sprintf("https://shop.localhost/%02d", i), nil)
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 || body != "ok" {
				t.Errorf("stream %d: %s %s %q", i, resp.Proto, resp.Status, body)
			}
		}()
		// The next stream starts once this one is in the dyno or queued.
		waitFor(t, "stream queued", func() bool { return int(b.inflight.Load())+tr.waiting("shop") == i+1 })
	}
	for i := 0; i < n; i++ {
		gate <- struct{}{}
	}
	wg.Wait()
	for i, got := range order {
		if want := fmt.Sprintf("/%02d HTTP/1.1", i); got != want {
			t.Errorf("dyno request %d: %q, want %q (FIFO)", i, got, want)
		}
	}
}

// headDyno is a dyno that records the request line and Host header of each request it
// gets, as bytes on the wire (Go's server would refuse a malformed request line before a
// test could see it), and answers 200.
func headDyno(t *testing.T) (addr string, heads func() []string) {
	var mu sync.Mutex
	var got []string
	addr, _ = rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head := strings.TrimSuffix(line, "\r\n")
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == "\r\n" {
					break
				}
				if strings.HasPrefix(l, "Host:") {
					head += " | " + strings.TrimSuffix(l, "\r\n")
				}
			}
			mu.Lock()
			got = append(got, head)
			mu.Unlock()
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	return addr, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

// TestH2PseudoHeadersChecked: Go's HTTP/2 server lets spaces through in :method, :path
// and :authority, which the router writes to the dyno as its request line and Host
// header. A stream whose method is not a token, whose path is not an origin-form target
// the HTTP/1.1 parser would take (or '*' for OPTIONS), or whose authority is not a
// host[:port] is answered 400 and logged with why, and no dyno gets any of it; the
// connection goes on serving well-formed streams.
func TestH2PseudoHeadersChecked(t *testing.T) {
	tr := startTLSRouter(t, nil)
	addr, heads := headDyno(t)
	tr.SetApp("shop", []Instance{rawInstance(addr, "web.1")})
	h := dialRawH2(t, tr)
	for i, tc := range []struct {
		fields [][2]string
		reason string
	}{
		{[][2]string{{":method", "GET"}, {":path", "/echo?a b"}, {":authority", "shop.localhost"}}, "malformed request target"},
		{[][2]string{{":method", "GET /smuggle?"}, {":path", "/echo"}, {":authority", "shop.localhost"}}, "malformed method"},
		{[][2]string{{":method", "GET"}, {":path", "/echo"}, {":authority", "shop.localhost:1 junk"}}, "malformed authority"},
		{[][2]string{{":method", "GET"}, {":path", "/echo"}, {":authority", "shop.localhost:80,evil.example"}}, "malformed authority"},
		{[][2]string{{":method", "GET"}, {":path", "/echo"}, {":authority", "shop.localhost:evil.example"}}, "malformed authority"},
		{[][2]string{{":method", "GET"}, {":path", "/echo"}, {"host", "shop.localhost junk"}}, "malformed authority"},
		{[][2]string{{":method", "GET"}, {":path", "*"}, {":authority", "shop.localhost"}}, "asterisk-form"},
		{[][2]string{{":method", "GET"}, {":path", "https://shop.localhost/echo"}, {":authority", "shop.localhost"}}, "not in origin form"},
	} {
		id := uint32(1 + 2*i)
		h.wb.Reset()
		_ = h.he.WriteField(hpack.HeaderField{Name: ":scheme", Value: "https"})
		for _, f := range tc.fields {
			_ = h.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.wb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		f, err := h.readUntil(func(f http2.Frame) bool {
			return f.Header().StreamID == id && (f.Header().Type == http2.FrameHeaders || f.Header().Type == http2.FrameRSTStream)
		})
		if err != nil {
			t.Fatalf("%v: no answer: %v", tc.fields, err)
		}
		mh, ok := f.(*http2.MetaHeadersFrame)
		if !ok {
			t.Errorf("%v: answered %v, want 400", tc.fields, f)
			continue
		}
		if s := mh.PseudoValue("status"); s != "400" {
			t.Errorf("%v: status %s, want 400", tc.fields, s)
		}
		if !tr.logHas("refused an HTTP/2 request", tc.reason) {
			t.Errorf("%v: no log line saying %q", tc.fields, tc.reason)
		}
	}
	if got := heads(); len(got) != 0 {
		t.Fatalf("the dyno got %q", got)
	}
	// The same connection still serves a well-formed stream.
	h.get(99, "shop.localhost", "/ok?a=b")
	f, err := h.readUntil(func(f http2.Frame) bool {
		return f.Header().StreamID == 99 && f.Header().Type == http2.FrameHeaders
	})
	if err != nil {
		t.Fatalf("well-formed stream: %v", err)
	}
	if s := f.(*http2.MetaHeadersFrame).PseudoValue("status"); s != "200" {
		t.Errorf("well-formed stream: status %s, want 200", s)
	}
	if got := heads(); len(got) != 1 || got[0] != "GET /ok?a=b HTTP/1.1 | Host: shop.localhost" {
		t.Errorf("the dyno got %q, want the one well-formed request", got)
	}
}
