package drain

import "testing"

func TestProcNameNamesDynosAsHerokuDoes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ job, alloc, want string }{
		{"shop", "shop.web[0]", "web.1"},
		{"shop", "shop.worker[2]", "worker.3"},
		{"shop-run-1a2b3c4d", "shop-run-1a2b3c4d.run[0]", "run.1a2b3c4d"},
		{"shop-runner", "shop-runner.web[0]", "web.1"},
	} {
		if got := procName("shop", c.job, c.alloc); got != c.want {
			t.Errorf("procName(shop, %s, %s) = %q, want %q", c.job, c.alloc, got, c.want)
		}
	}
}
