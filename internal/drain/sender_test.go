package drain

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/drain/draintest"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// sendLines sends n lines, alternately from the router and from web.1, numbered per
// source, and returns how long sending took.
func sendLines(s *Sender, n int) time.Duration {
	start := time.Now()
	for i := 0; i < n; i++ {
		proc := []string{"router", "web.1"}[i%2]
		s.Send(Message{Time: time.Now(), Proc: proc, Text: fmt.Sprintf("%s line %d", proc, i/2)})
	}
	return time.Since(start)
}

// checkOrder checks that each source's lines arrived, in order, all n/2 of each; got
// holds "HOST APP PROCID MSG" entries.
func checkOrder(t *testing.T, token string, got []string, n int) {
	t.Helper()
	next := map[string]int{}
	for _, l := range got {
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 {
			t.Fatalf("received %q: want host, app-name, procid and message", l)
		}
		wantApp := map[string]string{"router": "heroku", "web.1": "app"}[f[2]]
		if f[0] != token || f[1] != wantApp {
			t.Fatalf("received %q: want host %s and app-name %q for procid %q", l, token, wantApp, f[2])
		}
		if want := fmt.Sprintf("%s line %d", f[2], next[f[2]]); strings.TrimSpace(f[3]) != want {
			t.Fatalf("received %q from %s: want %q next (lines in order)", f[3], f[2], want)
		}
		next[f[2]]++
	}
	if next["router"] != n/2 || next["web.1"] != n/2 {
		t.Fatalf("received %v lines per source: want %d of each", next, n/2)
	}
}

func runSender(t *testing.T, s *Sender) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestSyslogDrainsDeliverToRsyslogInOrder(t *testing.T) {
	t.Parallel()
	cert := draintest.NewCert(t)
	for _, tc := range []struct {
		scheme string
		cert   *draintest.Cert
	}{{"syslog", nil}, {"syslog+tls", cert}} {
		t.Run(tc.scheme, func(t *testing.T) {
			t.Parallel()
			rs := draintest.StartRsyslog(t, t.TempDir(), 0, tc.cert)
			d := Drain{Token: "d.00000000-0000-4000-8000-000000000001", URL: tc.scheme + "://" + rs.Addr()}
			s, err := NewSender(d, testSenderConfig(cert.Pool, 4<<20))
			if err != nil {
				t.Fatal(err)
			}
			runSender(t, s)
			const n = 2000
			sendLines(s, n)
			checkOrder(t, d.Token, rs.WaitLines(t, n), n)
			if st := s.Status(); st.Sent != n || st.Dropped != 0 || st.Error != "" {
				t.Fatalf("status %+v: want %d sent, none dropped, no error", st, n)
			}
		})
	}
}

func TestADownDrainDropsWithACountThenCatchesUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rs := draintest.StartRsyslog(t, dir, 0, nil)
	port := rs.Port
	rs.Stop()
	d := Drain{Token: "d.00000000-0000-4000-8000-000000000002", URL: "syslog://" + rs.Addr()}
	s, err := NewSender(d, testSenderConfig(nil, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	runSender(t, s)
	const n = 20000
	took := sendLines(s, n)
	// Sending never waits on the drain: 20000 lines take well under a second.
	if took > 2*time.Second {
		t.Fatalf("sending %d lines to a down drain took %s: it must not wait", n, took)
	}
	var st Status
	testutil.WaitFor(t, 10*time.Second, "the sender to report its failure", func() error {
		st = s.Status()
		if st.Error == "" || st.Dropped == 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if st.Dropped+uint64(st.Buffered) != n || st.Sent != 0 {
		t.Fatalf("status %+v: dropped + buffered must be the %d lines sent, none sent", st, n)
	}
	if !strings.Contains(st.Error, "failed to connect") {
		t.Fatalf("error %q: want the failure to connect", st.Error)
	}
	// The drain comes back on the same port: the buffered lines arrive, the newest ones.
	rs = draintest.StartRsyslog(t, dir, port, nil)
	got := rs.WaitLines(t, st.Buffered)
	last := got[len(got)-1]
	if !strings.HasSuffix(last, fmt.Sprintf("web.1 line %d", n/2-1)) {
		t.Fatalf("last line received %q: want the last one sent", last)
	}
	testutil.WaitFor(t, 10*time.Second, "the error to clear", func() bool { return s.Status().Error == "" })
}

func TestHTTPSDrainPostsLogplexBatches(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	var bad []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		frames, err := splitFrames(body)
		mu.Lock()
		defer mu.Unlock()
		user, pass, _ := r.BasicAuth()
		switch {
		case err != nil:
			bad = append(bad, err.Error())
		case r.Header.Get("Content-Type") != "application/logplex-1":
			bad = append(bad, "content type "+r.Header.Get("Content-Type"))
		case r.Header.Get("Logplex-Msg-Count") != strconv.Itoa(len(frames)):
			bad = append(bad, fmt.Sprintf("Logplex-Msg-Count %s for %d frames", r.Header.Get("Logplex-Msg-Count"), len(frames)))
		case r.Header.Get("Logplex-Drain-Token") == "" || len(r.Header.Get("Logplex-Frame-Id")) != 32:
			bad = append(bad, fmt.Sprintf("headers %v", r.Header))
		case user != "u" || pass != "p" || r.URL.Path != "/logs":
			bad = append(bad, fmt.Sprintf("user %q, password %q, path %q", user, pass, r.URL.Path))
		}
		for _, f := range frames {
			// <PRI>1 TIME HOST APP PROCID MSGID SD MSG
			p := strings.SplitN(f, " ", 8)
			got = append(got, strings.Join([]string{p[2], p[3], p[4], p[7]}, " "))
		}
	}))
	defer srv.Close()
	d := Drain{Token: "d.00000000-0000-4000-8000-000000000003", URL: strings.Replace(srv.URL, "https://", "https://u:p@", 1) + "/logs"}
	s, err := NewSender(d, testSenderConfig(poolOf(srv), 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	runSender(t, s)
	const n = 3000
	sendLines(s, n)
	testutil.WaitFor(t, 30*time.Second, "the HTTPS drain to receive every line", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			return nil
		}
		if len(got) < n {
			return fmt.Errorf("%d so far", len(got))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("bad posts: %q", bad)
	}
	checkOrder(t, d.Token, got, n)
}

// splitFrames splits an octet-counted body into its messages.
func splitFrames(body []byte) ([]string, error) {
	var out []string
	r := bufio.NewReader(bytes.NewReader(body))
	for {
		lenText, err := r.ReadString(' ')
		if err == io.EOF && lenText == "" {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", len(out), err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(lenText))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("frame %d: length %q", len(out), lenText)
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return nil, fmt.Errorf("frame %d: %w", len(out), err)
		}
		out = append(out, string(msg))
	}
}
