package deploy

import "testing"

func TestDynoNamesOfOneOffJobs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ job, oneOff, scheduled string }{
		{"shop-run-1234", "run.1234", ""},
		{"shop-scheduler-nightly/periodic-1765000000", "", "scheduler.nightly.1765000000"},
		{"shop-scheduler-nightly", "", ""},
		{"shop", "", ""},
		{"shop-run-", "", ""},
		{"other-run-1234", "", ""},
		{"shop-scheduler-/periodic-1", "", ""},
	} {
		if got := OneOffName("shop", tc.job); got != tc.oneOff {
			t.Errorf("OneOffName(shop, %q) = %q, want %q", tc.job, got, tc.oneOff)
		}
		if got := ScheduledRunName("shop", tc.job); got != tc.scheduled {
			t.Errorf("ScheduledRunName(shop, %q) = %q, want %q", tc.job, got, tc.scheduled)
		}
	}
}
