package drain

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// countingListener listens on addr and counts the connections it accepts.
func countingListener(t *testing.T, network, addr string) (net.Listener, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln, &n
}

// TestDrainsCannotReachTheGridsNetwork points drains at a loopback listener in every
// form a tenant could write it (a name resolving to it, IPv4-mapped and IPv6 forms,
// https), with a shipper that opens no range: each drain's status says its address is
// not public, and the listener never sees a connection.
func TestDrainsCannotReachTheGridsNetwork(t *testing.T) {
	t.Parallel()
	ln4, got4 := countingListener(t, "tcp4", "127.0.0.1:0")
	port := ln4.Addr().(*net.TCPAddr).Port
	urls := []string{
		fmt.Sprintf("syslog://127.0.0.1:%d", port),
		fmt.Sprintf("syslog://localhost:%d", port),
		fmt.Sprintf("syslog://[::ffff:127.0.0.1]:%d", port),
		fmt.Sprintf("syslog://[::ffff:7f00:1]:%d", port),
		fmt.Sprintf("syslog+tls://127.0.0.1:%d", port),
		fmt.Sprintf("https://user:hunter2@127.0.0.1:%d/logs", port),
		fmt.Sprintf("https://user:hunter2@localhost:%d/logs", port),
	}
	var got6 *atomic.Int32
	if ln6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln6.Close()
		var l net.Listener
		l, got6 = countingListener(t, "tcp6", "[::1]:0")
		p6 := l.Addr().(*net.TCPAddr).Port
		urls = append(urls, fmt.Sprintf("syslog://[::1]:%d", p6), fmt.Sprintf("https://[::1]:%d/", p6))
	}
	cfg := testSenderConfig(nil, 64<<10)
	cfg.Dialer = NewDialer(nil) // as dyno dev up runs it: no range opened
	var senders []*Sender
	for i, u := range urls {
		s, err := NewSender(Drain{Token: fmt.Sprintf("d.%08d-0000-4000-8000-000000000000", i), URL: u}, cfg)
		if err != nil {
			t.Fatalf("NewSender(%s): %v", u, err)
		}
		runSender(t, s)
		s.Send(Message{Time: time.Now(), Proc: "web.1", Text: "secret lines of the app"})
		senders = append(senders, s)
	}
	for i, s := range senders {
		testutil.WaitFor(t, 20*time.Second, "drain "+urls[i]+" to be refused", func() error {
			if e := s.Status().Error; !strings.Contains(e, "is not public") {
				return fmt.Errorf("status error %q", e)
			}
			return nil
		})
		if e := s.Status().Error; strings.Contains(e, "hunter2") {
			t.Errorf("drain %s: status error %q shows the URL's password", urls[i], e)
		}
	}
	if n := got4.Load(); n != 0 {
		t.Errorf("the loopback listener accepted %d connections from drains: want none", n)
	}
	if got6 != nil && got6.Load() != 0 {
		t.Errorf("the [::1] listener accepted %d connections from drains: want none", got6.Load())
	}
}

// TestHTTPSDrainsFollowNoRedirect gives an HTTPS drain that answers each post with a
// redirect to another listener (one the shipper may reach): the post is not repeated
// there, and the drain's status names the redirect.
func TestHTTPSDrainsFollowNoRedirect(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	target := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer target.Close()
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		drain := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/stolen", code)
		}))
		defer drain.Close()
		pool := poolOf(drain)
		pool.AddCert(target.Certificate())
		s, err := NewSender(Drain{Token: "d.00000000-0000-4000-8000-000000000009", URL: drain.URL + "/logs"}, testSenderConfig(pool, 64<<10))
		if err != nil {
			t.Fatal(err)
		}
		runSender(t, s)
		s.Send(Message{Time: time.Now(), Proc: "web.1", Text: "a line"})
		testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("the %d to show in the status", code), func() error {
			if e := s.Status().Error; !strings.Contains(e, fmt.Sprint(code)) {
				return fmt.Errorf("status error %q", e)
			}
			return nil
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the redirect's target got %d posts: want none", n)
	}
}

// TestDrainAddressesMustBePublicUnlessAllowed checks every special-purpose range a
// tenant could aim a drain at, in IPv4 and the IPv6 forms that carry an IPv4 address.
func TestDrainAddressesMustBePublicUnlessAllowed(t *testing.T) {
	t.Parallel()
	for _, a := range []string{
		"127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254",
		"0.0.0.0", "0.1.2.3", "100.64.0.1", "100.100.100.200", "192.0.0.192", "198.18.0.1",
		"224.0.0.1", "240.0.0.1", "255.255.255.255",
		"::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "fec0::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "::a9fe:a9fe",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1",
		"2002:7f00:1::", "2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
	} {
		if err := checkAddr(netip.MustParseAddr(a).Unmap(), nil); err == nil {
			t.Errorf("%s: a drain may reach it, want refused", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "2a00:1450:4001:830::200e"} {
		if err := checkAddr(netip.MustParseAddr(a), nil); err != nil {
			t.Errorf("a public address refused: %v", err)
		}
	}
	if err := checkAddr(netip.MustParseAddr("127.0.0.1"), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}); err != nil {
		t.Errorf("an allowed loopback refused: %v", err)
	}
}

// TestBadDrainURLsKeepTheirPasswordOut: an error about a drain URL is logged by the
// shipper (a tenant may write any URL into its drains' Variable), so it never holds
// the URL's password.
func TestBadDrainURLsKeepTheirPasswordOut(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"https://user:hunter2@logs.example.com/#frag",
		"https://user:hunter2@logs.example.com/%zz",
		"https://user:hunter2@bad_host-.example.com/",
		"https://user:hunter2@logs.example.com:99999/",
		"https://user:hunter2@127.1/",
		"syslog://user:hunter2@logs.example.com:514",
		"https://user:hunter2@logs.example.com/a b",
		"syslog://user:hunter2@[::1:514",
	} {
		_, err := ParseURL(raw)
		if err == nil {
			t.Errorf("ParseURL(%q) = nil error, want one", raw)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL(%q): error %q shows the password", raw, err)
		}
	}
}

// TestDrainFramesCannotBeForged sends lines a hostile dyno could write: line breaks of
// every kind, NUL, an embedded octet-counted frame claiming to be the router's, text
// that is not UTF-8, a line far over the limit. Each gives exactly one frame, with the
// dyno's own header, whether the receiver counts octets or splits on line ends.
func TestDrainFramesCannotBeForged(t *testing.T) {
	t.Parallel()
	forged := "<158>1 2026-12-06T05:00:00.000000+00:00 d.x heroku router - - at=info status=200"
	for name, text := range map[string]string{
		"LF":          "a\n" + fmt.Sprint(len(forged)) + " " + forged,
		"CRLF":        "a\r\n" + forged,
		"NUL":         "a\x00" + forged,
		"NEL":         "a\u0085" + forged,
		"LS":          "a\u2028" + forged,
		"PS":          "a\u2029" + forged,
		"FF VT ESC":   "a\f\v\x1b[2K" + forged,
		"not UTF-8":   "a\xff\xfe" + forged,
		"huge":        strings.Repeat("é", 3*maxLine),
		"huge bytes":  strings.Repeat("\xff", 3*maxLine),
		"octet count": "9999999 " + forged,
	} {
		frame := Message{Time: time.Now(), Proc: "web.1", Text: text}.Frame("d.00000000-0000-4000-8000-000000000001")
		msgs, err := splitFrames(frame)
		if err != nil || len(msgs) != 1 {
			t.Errorf("%s: frame %q splits into %d messages (%v): want 1", name, frame, len(msgs), err)
			continue
		}
		m := msgs[0]
		if f := strings.SplitN(m, " ", 8); len(f) != 8 || f[0] != "<190>1" || f[3] != "app" || f[4] != "web.1" {
			t.Errorf("%s: message %q: want the dyno's header", name, m)
		}
		if strings.ContainsAny(m, "\r\n\x00\u0085\u2028\u2029\f\v\x1b") {
			t.Errorf("%s: message %q holds a line end or control character", name, m)
		}
		if !utf8.ValidString(m) {
			t.Errorf("%s: message %q is not UTF-8", name, m)
		}
		if len(m) > maxLine+200 {
			t.Errorf("%s: message of %d bytes: want the line cut to %d", name, len(m), maxLine)
		}
	}
}

// TestShipperTakesAtMostMaxDrains writes into an app's drains what its deploy token
// could write without drains:add (many drains, one URL many times, forged tokens): the
// shipper runs a sender for at most MaxDrains of them, each URL once, good tokens only.
func TestShipperTakesAtMostMaxDrains(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &appShipper{s: &Shipper{Sender: testSenderConfig(nil, 64<<10)}, app: "shop", ctx: ctx, cancel: cancel,
		log: hclog.NewNullLogger(), senders: map[string]*runningSender{}}
	var drains []Drain
	for i := 0; i < 2000; i++ {
		drains = append(drains, Drain{Token: fmt.Sprintf("d.%08x-0000-4000-8000-000000000000", i), URL: fmt.Sprintf("syslog://logs%d.example.com:514", i%3)})
	}
	drains = append([]Drain{
		{Token: "d.x heroku router", URL: "syslog://a.example.com:514"},
		{Token: "d.00000000-0000-4000-8000-00000000000a", URL: "ftp://a.example.com/"},
	}, drains...)
	a.syncSenders(drains)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.senders) > MaxDrains {
		t.Fatalf("%d senders: want at most %d", len(a.senders), MaxDrains)
	}
	urls := map[string]bool{}
	for token, r := range a.senders {
		if !tokenRE.MatchString(token) || urls[r.s.Drain.URL] {
			t.Errorf("sender of token %q to %s: want good tokens and each URL once", token, r.s.Drain.URL)
		}
		urls[r.s.Drain.URL] = true
	}
	if len(a.senders) != 3 {
		t.Errorf("%d senders: want one per URL, 3", len(a.senders))
	}
}

// TestDrainMetricsHoldNoURL reads the shipper's metrics of a drain whose URL holds a
// password: the drain is named by its token only.
func TestDrainMetricsHoldNoURL(t *testing.T) {
	t.Parallel()
	s, err := NewSender(Drain{Token: "d.00000000-0000-4000-8000-000000000004", URL: "https://user:hunter2@logs.example.com/logs"}, testSenderConfig(nil, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	a := &appShipper{senders: map[string]*runningSender{s.Drain.Token: {s: s}}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector{Shipper: &Shipper{apps: map[string]*appShipper{"shop": a}}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 3 {
		t.Fatalf("%d metrics: want 3", len(mfs))
	}
	if text := fmt.Sprint(mfs); strings.Contains(text, "hunter2") || strings.Contains(text, "logs.example.com") {
		t.Fatalf("metrics %s show the drain's URL", text)
	}
}
