package router

import (
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

func TestAppOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tags []string
		app  string
		ok   bool
	}{
		{"shop-web", []string{"dyno", "app=shop"}, "shop", true},
		{"shop-web", []string{"dyno"}, "shop", true},
		{"shop-web", []string{"app=shop"}, "shop", false},
		{"shop-worker", []string{"dyno", "app=shop"}, "", false},
		{"-web", []string{"dyno"}, "", false},
		{"shop-web", []string{"dyno", "app=other"}, "", false},
		{"consul", nil, "", false},
	} {
		app, ok := appOf(tc.name, tc.tags)
		if ok != tc.ok || (ok && app != tc.app) {
			t.Errorf("appOf(%q, %v) = %q, %v; want %q, %v", tc.name, tc.tags, app, ok, tc.app, tc.ok)
		}
	}
}

func TestInstanceOf(t *testing.T) {
	t.Parallel()
	e := &consulapi.ServiceEntry{
		Node: &consulapi.Node{Address: "10.0.0.9"},
		Service: &consulapi.AgentService{ID: "shop-web-1", Port: 8001, Meta: map[string]string{
			"dyno": "web.1", "release": "v3", "domains": " www.shop.test, ,shop.test", "timeout": "45s", "maintenance": "true"}},
	}
	in, err := instanceOf(e)
	if err != nil {
		t.Fatal(err)
	}
	if in.Address != "10.0.0.9" || in.Dyno != "web.1" || in.Release != "v3" || in.Timeout != 45*time.Second ||
		!in.Maintenance || strings.Join(in.Domains, ",") != "www.shop.test,shop.test" {
		t.Fatalf("instance %+v", in)
	}
	for _, bad := range []string{"soon", "-1s", "1"} {
		e.Service.Meta["timeout"] = bad
		in, err := instanceOf(e)
		if err == nil || !strings.Contains(err.Error(), "timeout") || !strings.Contains(err.Error(), "shop-web-1") || in.Timeout != 0 {
			t.Errorf("timeout %q: err %v, timeout %s; want an error naming the service and the setting", bad, err, in.Timeout)
		}
	}
}

func TestNextIndex(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ prev, last, want uint64 }{
		{0, 5, 5}, {5, 5, 5}, {5, 9, 9}, {9, 3, 0}, {4, 0, 0},
	} {
		if got := nextIndex(tc.prev, tc.last); got != tc.want {
			t.Errorf("nextIndex(%d, %d) = %d, want %d", tc.prev, tc.last, got, tc.want)
		}
	}
}

func TestSettingsOf(t *testing.T) {
	t.Parallel()
	s := settingsOf([]Instance{
		{Domains: []string{"B.test", "a.test"}, Timeout: time.Second},
		{Domains: []string{"a.test."}, Timeout: 3 * time.Second, Maintenance: true},
	})
	if strings.Join(s.domains, ",") != "a.test,b.test" || s.timeout != 3*time.Second || !s.maintenance {
		t.Fatalf("settings %+v", s)
	}
}

func TestParseStatic(t *testing.T) {
	t.Parallel()
	app, insts, err := ParseStatic("shop=127.0.0.1:5000, [::1]:5001")
	if err != nil || app != "shop" || len(insts) != 2 || insts[1].Address != "::1" || insts[1].Dyno != "web.2" {
		t.Fatalf("got %q %+v %v", app, insts, err)
	}
	for _, bad := range []string{"shop", "=1.2.3.4:5", "shop=1.2.3.4", "shop=1.2.3.4:0", "a.b=1.2.3.4:5", "shop=1.2.3.4:5,"} {
		if _, _, err := ParseStatic(bad); err == nil || !strings.Contains(err.Error(), "static route") {
			t.Errorf("ParseStatic(%q) = %v, want an error naming the route", bad, err)
		}
	}
}
