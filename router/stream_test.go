package router

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStreamsRequestBody(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x %v", n, h.Sum(nil), r.TransferEncoding)
	})
	tr := startRouter(t, nil)
	tr.SetApp("up", []Instance{b.instance("web.1")})
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	sum := sha256.Sum256(big)
	// Chunked upload larger than the prefetch: streamed to the dyno chunked.
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(big); off += 100000 {
			pw.Write(big[off:min(off+100000, len(big))])
		}
		pw.Close()
	}()
	resp, body := tr.do(t, "PUT", "up.localhost", "/", pr, nil)
	if want := fmt.Sprintf("%d %x [chunked]", len(big), sum); resp.StatusCode != 200 || body != want {
		t.Fatalf("chunked upload: got %d %q, want %q", resp.StatusCode, body, want)
	}
	// Sized upload.
	resp, body = tr.do(t, "POST", "up.localhost", "/", bytes.NewReader(big), nil)
	if want := fmt.Sprintf("%d %x []", len(big), sum); resp.StatusCode != 200 || body != want {
		t.Fatalf("sized upload: got %d %q, want %q", resp.StatusCode, body, want)
	}
	// Small chunked body: read whole, sent with a length.
	_, body = tr.do(t, "POST", "up.localhost", "/", io.MultiReader(strings.NewReader("small")), nil)
	if want := fmt.Sprintf("5 %x []", sha256.Sum256([]byte("small"))); body != want {
		t.Fatalf("small chunked body: got %q, want %q", body, want)
	}
}

func TestStreamsResponseBody(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "part%d\n", i)
			w.(http.Flusher).Flush()
			<-next
		}
	})
	tr := startRouter(t, nil)
	tr.SetApp("sse", []Instance{b.instance("web.1")})
	req, _ := http.NewRequest("GET", tr.url+"/", nil)
	req.Host = "sse.localhost"
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("response not chunked: %v", resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("part%d\n", i) {
			t.Fatalf("part %d: %q %v (the router must not hold the stream back)", i, line, err)
		}
		next <- struct{}{}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("trailing data %q", rest)
	}
}

func TestKeepAliveToDyno(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	tr := startRouter(t, nil)
	tr.SetApp("ka", []Instance{b.instance("web.1")})
	for i := 0; i < 20; i++ {
		tr.do(t, "GET", "ka.localhost", "/", nil, nil)
	}
	if c := b.conns.Load(); c != 1 {
		t.Fatalf("dyno saw %d connections for 20 requests, want 1", c)
	}
}

func TestHeadAndNoContent(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(204)
			return
		}
		w.Header().Set("Content-Length", "5")
		if r.Method != "HEAD" {
			io.WriteString(w, "hello")
		}
	})
	tr := startRouter(t, nil)
	tr.SetApp("h", []Instance{b.instance("web.1")})
	for i := 0; i < 3; i++ {
		if resp, body := tr.do(t, "HEAD", "h.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "" || resp.ContentLength != 5 {
			t.Fatalf("HEAD: %d %q len %d", resp.StatusCode, body, resp.ContentLength)
		}
		if resp, _ := tr.do(t, "GET", "h.localhost", "/204", nil, nil); resp.StatusCode != 204 {
			t.Fatalf("204: %d", resp.StatusCode)
		}
		if _, body := tr.do(t, "GET", "h.localhost", "/", nil, nil); body != "hello" {
			t.Fatalf("GET after HEAD: %q", body)
		}
	}
}

func TestWebSocketUpgradeHoldsDyno(t *testing.T) {
	t.Parallel()
	var b *backend
	b = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			io.WriteString(w, "plain")
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer b.closeHijacked(r, c)
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		// Echo lines until the client closes.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo " + line)
			brw.Flush()
		}
	})
	tr := startRouter(t, nil)
	tr.SetApp("ws", []Instance{b.instance("web.1")})

	c, err := net.Dial("tcp", tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade answer %v %v", resp, err)
	}
	io.WriteString(c, "hi\n")
	if line, _ := br.ReadString('\n'); line != "echo hi\n" {
		t.Fatalf("echo got %q", line)
	}
	// While the socket is open the dyno is busy: a plain request waits.
	got := make(chan string, 1)
	go func() { _, body := tr.do(t, "GET", "ws.localhost", "/", nil, nil); got <- body }()
	waitFor(t, "plain request queued", func() bool { return tr.waiting("ws") == 1 })
	io.WriteString(c, "again\n")
	if line, _ := br.ReadString('\n'); line != "echo again\n" {
		t.Fatalf("echo got %q", line)
	}
	c.Close()
	select {
	case body := <-got:
		if body != "plain" {
			t.Fatalf("queued request got %q", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("queued request not served after the socket closed")
	}
	waitFor(t, "upgrade log", func() bool { return tr.logHas("path=\"/ws\"", "status=101") })
}

func TestClientGoneMidResponseKeepsDynoBusyUntilItEnds(t *testing.T) {
	t.Parallel()
	more := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/long" {
			io.WriteString(w, "short")
			return
		}
		io.WriteString(w, "first part\n")
		w.(http.Flusher).Flush()
		<-more
		io.WriteString(w, strings.Repeat("rest\n", 1000))
	})
	tr := startRouter(t, nil)
	tr.SetApp("gone", []Instance{b.instance("web.1")})
	c, err := net.Dial("tcp", tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /long HTTP/1.1\r\nHost: gone.localhost\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "first part\n" {
		t.Fatalf("first part %q", line)
	}
	c.Close() // the client leaves mid-response
	released := false
	defer func() {
		if !released {
			close(more)
		}
	}()
	got := make(chan string, 1)
	go func() { _, body := tr.do(t, "GET", "gone.localhost", "/next", nil, nil); got <- body }()
	waitFor(t, "next queued behind the unfinished response", func() bool { return tr.waiting("gone") == 1 })
	if st := tr.appStats("gone"); st.Busy != 1 || st.Idle != 0 || st.Waiting != 1 {
		t.Fatalf("while the dyno still sends its last response: %+v, want it busy and /next waiting", st)
	}
	released = true
	close(more)
	if body := <-got; body != "short" {
		t.Fatalf("next request got %q", body)
	}
	waitFor(t, "H27 logged", func() bool { return tr.logHas("code=H27", `path="/long"`) })
}

func TestRedispatchKeepsAStreamedBody(t *testing.T) {
	t.Parallel()
	dead := refusingAddr(t)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	tr := startRouter(t, func(c *Config) { c.DownBackoff = time.Hour; c.MaxDownBackoff = time.Hour })
	tr.SetApp("rb", []Instance{b.instance("web.2"), rawInstance(dead, "web.1")})
	big := bytes.Repeat([]byte("x"), 300<<10)
	sum := sha256.Sum256(big)
	resp, body := tr.do(t, "POST", "rb.localhost", "/", bytes.NewReader(big), nil)
	if want := fmt.Sprintf("%d %x", len(big), sum); resp.StatusCode != 200 || body != want {
		t.Fatalf("got %d %q, want %q: the body must survive a refused first dyno", resp.StatusCode, body, want)
	}
	if s := tr.appStats("rb"); s.Up != 1 {
		t.Fatalf("refusing dyno not down: %+v", s)
	}
}
