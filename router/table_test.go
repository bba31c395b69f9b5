package router

import (
	"testing"
)

// TestCanonicalHost: a Host is routed by its name, lower-cased, without its port or a
// trailing dot; a Host whose port is not 1 to 5 digits (0 to 65535) names no app, so
// that "myapp.localhost:80,evil.example" cannot route to myapp by what comes before the
// colon.
func TestCanonicalHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]string{
		"myapp.localhost":                 "myapp.localhost",
		"MyApp.LocalHost.":                "myapp.localhost",
		"myapp.localhost:80":              "myapp.localhost",
		"myapp.localhost:0":               "myapp.localhost",
		"myapp.localhost:65535":           "myapp.localhost",
		"":                                "",
		"myapp.localhost:80,evil.example": "",
		"myapp.localhost:evil.example":    "",
		"myapp.localhost:":                "",
		"myapp.localhost:65536":           "",
		"myapp.localhost:000080":          "",
		"myapp.localhost:1 junk":          "",
		"myapp.localhost:80:81":           "",
		"[::1]:80,evil.example":           "",
	} {
		if got := canonicalHost(host); got != want {
			t.Errorf("canonicalHost(%q) = %q, want %q", host, got, want)
		}
	}
}

// TestHostWithBadPortRefused: over HTTP/1.1, a Host whose port is not a port is
// refused (400) before routing, and the dyno of the app its name names gets nothing.
func TestHostWithBadPortRefused(t *testing.T) {
	t.Parallel()
	b, seen := recordingBackend(t)
	tr := startRouter(t, nil)
	tr.SetApp("myapp", []Instance{b.instance("web.1")})
	for _, host := range []string{
		"myapp.localhost:80,evil.example",
		"myapp.localhost:evil.example",
		"myapp.localhost:",
		"myapp.localhost:123456",
		"myapp.localhost:99999",
	} {
		if s, body := rawRequest(t, tr.Addr(), "GET /bad HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); s != 400 {
			t.Errorf("Host %q: status %d %q, want 400", host, s, body)
		}
	}
	if s, _ := rawRequest(t, tr.Addr(), "GET /good HTTP/1.1\r\nHost: myapp.localhost:8080\r\n\r\n"); s != 200 {
		t.Errorf("Host with a port: status %d, want 200", s)
	}
	if got := seen(); len(got) != 1 || got[0] != "GET /good=" {
		t.Errorf("the dyno saw %q, want the one good request", got)
	}
}
