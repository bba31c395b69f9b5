package logstream

import "testing"

func TestDynoName(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"shop.web[0]":          "web.1",
		"shop.worker[9]":       "worker.10",
		"my.app.web[1]":        "web.2",
		"weird":                "weird",
		"shop.web[x]":          "shop.web[x]",
		"shop-run-abcd.run[0]": "run.1",
	}
	for in, want := range cases {
		if got := DynoName(in); got != want {
			t.Errorf("DynoName(%q) = %q, want %q", in, got, want)
		}
	}
}
