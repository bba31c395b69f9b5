package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestCheckAppDomain: a certificate may be added for exactly <app>.<router domain>, the
// app's custom domains and wildcards over their parents; any other name, however it
// starts, is refused with a message naming what is accepted.
func TestCheckAppDomain(t *testing.T) {
	t.Parallel()
	custom := []string{"www.hello.test"}
	for _, d := range []string{"hello.apps.example.com", "www.hello.test", "*.hello.test"} {
		if err := checkAppDomain("hello", "apps.example.com", custom, d); err != nil {
			t.Errorf("%s for app hello: %v, want accepted", d, err)
		}
	}
	for d, want := range map[string]string{
		"hello.evil.com":              "hello.evil.com is not a domain of hello: a certificate may be added for hello.apps.example.com or one of the app's custom domains (www.hello.test)",
		"hello.apps.example.com.evil": "may be added for hello.apps.example.com",
		"x.hello.apps.example.com":    "may be added for hello.apps.example.com",
		"hello.example.com":           "may be added for hello.apps.example.com",
		"other.apps.example.com":      "may be added for hello.apps.example.com",
		"*.apps.example.com":          "may be added for hello.apps.example.com",
		"*.evil.com":                  "may be added for hello.apps.example.com",
	} {
		err := checkAppDomain("hello", "apps.example.com", custom, d)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s for app hello: %v, want an error with %q", d, err, want)
		}
	}
	// Without a router domain only custom domains are accepted, and the message says how
	// to give it.
	if err := checkAppDomain("hello", "", custom, "www.hello.test"); err != nil {
		t.Errorf("a custom domain without a router domain: %v", err)
	}
	err := checkAppDomain("hello", "", nil, "hello.localhost")
	if err == nil || !strings.Contains(err.Error(), "custom domains (none), and the grid's router domain is not known") ||
		!strings.Contains(err.Error(), "--router-domain") {
		t.Errorf("hello.localhost without a router domain: %v", err)
	}
}

// TestRouterDomainIsChecked: --router-domain and $DYNO_ROUTER_DOMAIN are refused when
// they are not DNS names, naming where the bad value came from, before any file is read.
func TestRouterDomainIsChecked(t *testing.T) {
	for _, tc := range []struct{ flag, env, want string }{
		{"apps.example.com/x", "", `--router-domain "apps.example.com/x": want the router's -domain`},
		{"", "*.example.com", `$DYNO_ROUTER_DOMAIN "*.example.com": want the router's -domain`},
	} {
		t.Setenv("DYNO_ROUTER_DOMAIN", tc.env)
		args := []string{"certs:add", "--app", "hello", "/nonexistent/c.pem", "/nonexistent/k.pem"}
		if tc.flag != "" {
			args = append(args, "--router-domain", tc.flag)
		}
		var out, errOut bytes.Buffer
		if code := Run(args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("dyno %s: exit %d, stderr %q; want %q", strings.Join(args, " "), code, errOut.String(), tc.want)
		}
	}
	m := &meta{}
	t.Setenv("DYNO_ROUTER_DOMAIN", "Apps.Example.COM.")
	if d, err := m.routerDomain(""); err != nil || d != "apps.example.com" {
		t.Errorf("$DYNO_ROUTER_DOMAIN Apps.Example.COM.: %q, %v; want apps.example.com as the router normalises it", d, err)
	}
}
