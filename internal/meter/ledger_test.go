package meter

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// t0 is the start of every scripted history.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func iv(app, proc, dyno string, start, end int) Interval {
	i := Interval{App: app, Process: proc, Dyno: dyno, Start: at(start)}
	if end >= 0 {
		i.End = at(end)
	}
	return i
}

// want is the expected figures of one process type: dynos, dyno-seconds, free, billed,
// and the cost in micro-dollars.
type want struct {
	dynos                      int
	dyno, free, billed, micros int64
}

func TestCompute(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		intervals []Interval
		window    Window
		// app -> process -> figures
		want map[string]map[string]want
		// total as text, to the cent
		total string
	}{
		{
			name: "four dynos for one hour cost fifteen cents",
			intervals: []Interval{
				iv("demo", "web", "a", 0, 3600), iv("demo", "web", "b", 0, 3600),
				iv("demo", "web", "c", 0, 3600), iv("demo", "web", "d", 0, 3600),
			},
			window: Window{Until: at(3600)},
			want:   map[string]map[string]want{"demo": {"web": {4, 14400, 3600, 10800, 150000}}},
			total:  "$0.15",
		},
		{
			name: "one dyno is free",
			intervals: []Interval{
				iv("demo", "web", "a", 0, 86400),
			},
			window: Window{Until: at(86400)},
			want:   map[string]map[string]want{"demo": {"web": {1, 86400, 86400, 0, 0}}},
			total:  "$0.00",
		},
		{
			name: "scale up to three then down to two",
			intervals: []Interval{
				iv("demo", "web", "a", 0, 7200),
				iv("demo", "web", "b", 3600, 7200),
				iv("demo", "web", "c", 3600, 5400),
			},
			window: Window{Until: at(7200)},
			// 5400 billed seconds at $0.05/h = $0.075 exactly, shown as $0.08.
			want:  map[string]map[string]want{"demo": {"web": {3, 12600, 7200, 5400, 75000}}},
			total: "$0.08",
		},
		{
			name: "crash and restart is not billed while down and loses seniority",
			intervals: []Interval{
				iv("demo", "web", "a", 0, 1000), iv("demo", "web", "a", 1010, 3600),
				iv("demo", "worker", "b", 0, 3600),
			},
			window: Window{Until: at(3600)},
			// a is senior over [0,1000) (tie at 0, smaller ID); b from then on.
			want: map[string]map[string]want{"demo": {
				"web":    {1, 3590, 1000, 2590, 35972},
				"worker": {1, 3600, 2600, 1000, 13889},
			}},
			total: "$0.05",
		},
		{
			name: "reschedule to another host keeps one free dyno",
			intervals: []Interval{
				iv("demo", "web", "alloc-on-host1", 0, 600),
				iv("demo", "web", "alloc-on-host2", 630, 3600),
			},
			window: Window{Until: at(3600)},
			want:   map[string]map[string]want{"demo": {"web": {2, 3570, 3570, 0, 0}}},
			total:  "$0.00",
		},
		{
			name: "one-off dyno beside a web dyno",
			intervals: []Interval{
				iv("demo", "web", "a", 0, 3600),
				iv("demo", "run", "r", 100, 160),
			},
			window: Window{Until: at(3600)},
			// 60 s at $0.05/h is $1/1200 = 833.33 micro-dollars.
			want: map[string]map[string]want{"demo": {
				"web": {1, 3600, 3600, 0, 0},
				"run": {1, 60, 0, 60, 833},
			}},
			total: "$0.00",
		},
		{
			name: "app deleted and recreated",
			intervals: []Interval{
				iv("demo", "web", "a", 0, 1000), iv("demo", "web", "b", 0, 1000),
				iv("demo", "web", "c", 2000, 3000), iv("demo", "web", "d", 2000, 3000),
			},
			window: Window{Until: at(3600)},
			want:   map[string]map[string]want{"demo": {"web": {4, 4000, 2000, 2000, 27778}}},
			total:  "$0.03",
		},
		{
			name: "each app has its own free dyno",
			intervals: []Interval{
				iv("one", "web", "a", 0, 3600), iv("one", "web", "b", 0, 3600),
				iv("two", "web", "c", 0, 3600), iv("two", "web", "d", 0, 3600),
			},
			window: Window{Until: at(3600)},
			want: map[string]map[string]want{
				"one": {"web": {2, 7200, 3600, 3600, 50000}},
				"two": {"web": {2, 7200, 3600, 3600, 50000}},
			},
			total: "$0.10",
		},
		{
			name: "window clips intervals but keeps seniority",
			intervals: []Interval{
				iv("demo", "web", "z", 0, 7200), iv("demo", "web", "b", 1000, 7200),
				iv("demo", "web", "c", 1000, 7200), iv("demo", "web", "d", 1000, 7200),
			},
			window: Window{Since: at(1800), Until: at(5400)},
			want:   map[string]map[string]want{"demo": {"web": {4, 14400, 3600, 10800, 150000}}},
			total:  "$0.15",
		},
		{
			name: "running dynos are counted to the end of the window",
			intervals: []Interval{
				iv("demo", "web", "a", 0, -1), iv("demo", "web", "b", 1800, -1),
			},
			window: Window{Until: at(3600)},
			want:   map[string]map[string]want{"demo": {"web": {2, 5400, 3600, 1800, 25000}}},
			total:  "$0.03",
		},
		{
			name: "window before any dyno",
			intervals: []Interval{
				iv("demo", "web", "a", 100, 200),
			},
			window: Window{Since: at(0), Until: at(100)},
			want:   map[string]map[string]want{},
			total:  "$0.00",
		},
		{
			name: "overlapping tasks of one allocation count once",
			intervals: []Interval{
				iv("demo", "web", "a", 0, 100), iv("demo", "web", "a", 50, 200),
				iv("demo", "web", "b", 0, 200),
			},
			window: Window{Until: at(200)},
			want:   map[string]map[string]want{"demo": {"web": {2, 400, 200, 200, 2778}}},
			total:  "$0.00",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Compute(tc.intervals, DefaultPrice, tc.window)
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			checkReport(t, rep, tc.want)
			if got := rep.Total.String(); got != tc.total {
				t.Errorf("total = %s, want %s", got, tc.total)
			}
		})
	}
}

func checkReport(t *testing.T, rep Report, wantApps map[string]map[string]want) {
	t.Helper()
	if len(rep.Apps) != len(wantApps) {
		t.Errorf("report has %d apps, want %d: %+v", len(rep.Apps), len(wantApps), rep.Apps)
	}
	for app, procs := range wantApps {
		au, ok := rep.App(app)
		if !ok {
			t.Errorf("app %s missing from report", app)
			continue
		}
		if len(au.Processes) != len(procs) {
			t.Errorf("app %s has %d process types, want %d: %+v", app, len(au.Processes), len(procs), au.Processes)
		}
		for proc, w := range procs {
			pu, ok := au.Process(proc)
			if !ok {
				t.Errorf("app %s: process %s missing", app, proc)
				continue
			}
			got := want{pu.Dynos, pu.DynoSeconds, pu.FreeSeconds, pu.BilledSeconds, pu.Cost.Micros()}
			if got != w {
				t.Errorf("app %s process %s: got {dynos %d, dyno-s %d, free %d, billed %d, µ$ %d}, want {dynos %d, dyno-s %d, free %d, billed %d, µ$ %d}",
					app, proc, got.dynos, got.dyno, got.free, got.billed, got.micros,
					w.dynos, w.dyno, w.free, w.billed, w.micros)
			}
		}
	}
}

func TestComputeTruncatesToSeconds(t *testing.T) {
	t.Parallel()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	ivs := []Interval{
		// floor(0.9)=0 to floor(10.2)=10: 10 seconds.
		{App: "demo", Process: "web", Dyno: "a", Start: ms(900), End: ms(10_200)},
		// floor(0.1)=0 to floor(0.9)=0: nothing.
		{App: "demo", Process: "web", Dyno: "b", Start: ms(100), End: ms(900)},
		// 5.5 to 10.999: 5 seconds.
		{App: "demo", Process: "web", Dyno: "c", Start: ms(5_500), End: ms(10_999)},
	}
	rep, err := Compute(ivs, DefaultPrice, Window{Until: at(20)})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, map[string]map[string]want{"demo": {"web": {2, 15, 10, 5, 69}}})
}

func TestComputeRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ivs  []Interval
		w    Window
		msg  string
	}{
		{"no until", nil, Window{}, "until must be set"},
		{"no app", []Interval{{Dyno: "a", Start: at(0)}}, Window{Until: at(1)}, "interval 0: app and dyno must be set"},
		{"no dyno", []Interval{{App: "a", Start: at(0)}}, Window{Until: at(1)}, "interval 0: app and dyno must be set"},
	} {
		_, err := Compute(tc.ivs, DefaultPrice, tc.w)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error = %v, want one containing %q", tc.name, err, tc.msg)
		}
	}
}

// bruteForce computes the same figures second by second, without stretches or a heap:
// it marks every second each dyno runs in a table, then for every second lists the
// running dynos of each app, carries each one's seniority (the first second of its
// unbroken run) from the second before, and gives the free second to the most senior
// (smallest start, then smallest dyno ID).
func bruteForce(ivs []Interval, lo, hi int64) map[string]map[string]want {
	type dk struct{ app, proc, dyno string }
	first := hi
	for _, iv := range ivs {
		first = min(first, iv.Start.Unix())
	}
	first = min(first, hi)
	span := hi - first
	table := map[dk][]bool{}
	var all []dk
	for _, iv := range ivs {
		d := dk{iv.App, iv.Process, iv.Dyno}
		if table[d] == nil {
			table[d] = make([]bool, span)
			all = append(all, d)
		}
		e := hi
		if !iv.End.IsZero() {
			e = min(iv.End.Unix(), hi)
		}
		for s := iv.Start.Unix(); s < e; s++ {
			table[d][s-first] = true
		}
	}
	out := map[string]map[string]want{}
	dynos := map[dk]bool{}
	runStart := map[dk]int64{}
	for s := first; s < hi; s++ {
		best := map[string]dk{}
		for _, d := range all {
			if !table[d][s-first] {
				continue
			}
			if s == first || !table[d][s-first-1] {
				runStart[d] = s
			}
			if s < lo {
				continue
			}
			if out[d.app] == nil {
				out[d.app] = map[string]want{}
			}
			w := out[d.app][d.proc]
			w.dyno++
			out[d.app][d.proc] = w
			dynos[d] = true
			b, ok := best[d.app]
			if !ok || runStart[d] < runStart[b] || (runStart[d] == runStart[b] && (d.dyno < b.dyno || (d.dyno == b.dyno && d.proc < b.proc))) {
				best[d.app] = d
			}
		}
		for app, d := range best {
			w := out[app][d.proc]
			w.free++
			out[app][d.proc] = w
		}
	}
	for d := range dynos {
		w := out[d.app][d.proc]
		w.dynos++
		out[d.app][d.proc] = w
	}
	for _, procs := range out {
		for p, w := range procs {
			w.billed = w.dyno - w.free
			// Exact micro-dollars rounded half up: billed * price / 3600.
			w.micros = (w.billed*int64(DefaultPrice) + 1800) / 3600
			procs[p] = w
		}
	}
	return out
}

// TestComputeMatchesBruteForce checks Compute against bruteForce on random histories
// with sub-second times, restarts, several processes and apps, and random windows.
func TestComputeMatchesBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(20261125))
	for round := 0; round < 300; round++ {
		var ivs []Interval
		apps := 1 + rng.Intn(3)
		for a := 0; a < apps; a++ {
			for d := 0; d < 1+rng.Intn(6); d++ {
				proc := []string{"web", "worker", "run"}[rng.Intn(3)]
				cur := rng.Int63n(60e9)
				for k := 0; k < 1+rng.Intn(4); k++ {
					start := cur + rng.Int63n(20e9)
					end := start + rng.Int63n(40e9)
					i := Interval{App: fmt.Sprintf("app%d", a), Process: proc, Dyno: fmt.Sprintf("d%d", d),
						Start: t0.Add(time.Duration(start)), End: t0.Add(time.Duration(end))}
					if rng.Intn(10) == 0 {
						i.End = time.Time{}
					}
					ivs = append(ivs, i)
					cur = end
				}
			}
		}
		w := Window{Until: at(100 + rng.Intn(150))}
		lo := int64(-1 << 62)
		if rng.Intn(2) == 0 {
			w.Since = at(rng.Intn(80))
			lo = w.Since.Unix()
		}
		rep, err := Compute(ivs, DefaultPrice, w)
		if err != nil {
			t.Fatalf("round %d: Compute: %v", round, err)
		}
		expect := bruteForce(ivs, lo, w.Until.Unix())
		checkReport(t, rep, expect)
		if t.Failed() {
			t.Fatalf("round %d differs from the brute force on %+v window %+v", round, ivs, w)
		}
	}
}
