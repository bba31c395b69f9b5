package meter

import (
	"container/heap"
	"fmt"
	"math"
	"sort"
	"time"
)

// Interval is one stretch of time during which a dyno was running.
type Interval struct {
	// App is the app the dyno belongs to (job meta dyno.app).
	App string
	// Process is the process type (task group, or meta dyno.process; "run" for one-off dynos).
	Process string
	// Dyno identifies the dyno: the allocation ID.
	Dyno string
	// Start is when the dyno's task started running.
	Start time.Time
	// End is when it stopped; the zero time means it is still running, and the
	// interval is counted up to the end of the window.
	End time.Time
}

// Window is the half-open range of time [Since, Until) a computation counts. A zero
// Since means from the beginning; Until must be set.
type Window struct {
	Since, Until time.Time
}

// Compute prices a set of running intervals over a window.
//
// Times are whole seconds: every start and end is truncated to the Unix second that
// contains it, so a dyno runs during second s when some interval has
// floor(start) <= s < floor(end). The intervals of one dyno are united. At every second
// each running dyno accrues one dyno-second to its process type; the app's senior dyno
// (the one whose current unbroken run of seconds started earliest, ties broken by the
// smaller Dyno ID) accrues it as a free second, every other one as a billed second.
// Cost is billed seconds times the hourly price over 3600, kept exact (see Amount).
func Compute(intervals []Interval, price Price, w Window) (Report, error) {
	if w.Until.IsZero() {
		return Report{}, fmt.Errorf("window: until must be set")
	}
	lo, hi := int64(math.MinInt64), w.Until.Unix()
	if !w.Since.IsZero() {
		lo = w.Since.Unix()
	}
	if price < 0 {
		return Report{}, fmt.Errorf("price %s: must not be negative", price)
	}
	rep := Report{Since: w.Since, Until: w.Until, Price: price}
	if hi <= lo {
		return rep, nil
	}
	byApp := map[string][]Interval{}
	for i, iv := range intervals {
		if iv.App == "" || iv.Dyno == "" {
			return Report{}, fmt.Errorf("interval %d: app and dyno must be set (app %q, dyno %q)", i, iv.App, iv.Dyno)
		}
		byApp[iv.App] = append(byApp[iv.App], iv)
	}
	apps := make([]string, 0, len(byApp))
	for a := range byApp {
		apps = append(apps, a)
	}
	sort.Strings(apps)
	for _, a := range apps {
		au, err := computeApp(a, byApp[a], price, lo, hi)
		if err != nil {
			return Report{}, err
		}
		if au.Dynos == 0 {
			continue
		}
		rep.Apps = append(rep.Apps, au)
		if rep.Total, err = addAmount(rep.Total, au.Cost); err != nil {
			return Report{}, err
		}
		rep.DynoSeconds += au.DynoSeconds
		rep.FreeSeconds += au.FreeSeconds
		rep.BilledSeconds += au.BilledSeconds
	}
	return rep, nil
}

// stretch is a maximal run of whole seconds [start, end) during which one dyno ran.
type stretch struct {
	start, end int64
	dyno       string
	process    string
}

// stretches unites each dyno's intervals into disjoint, non-adjacent stretches of seconds.
func stretches(ivs []Interval, hi int64) []stretch {
	type key struct{ process, dyno string }
	byDyno := map[key][]stretch{}
	for _, iv := range ivs {
		s := iv.Start.Unix()
		e := hi
		if !iv.End.IsZero() {
			e = iv.End.Unix()
		}
		if e <= s {
			continue
		}
		k := key{iv.Process, iv.Dyno}
		byDyno[k] = append(byDyno[k], stretch{start: s, end: e, dyno: iv.Dyno, process: iv.Process})
	}
	var out []stretch
	for _, ss := range byDyno {
		sort.Slice(ss, func(i, j int) bool { return ss[i].start < ss[j].start })
		cur := ss[0]
		for _, s := range ss[1:] {
			if s.start <= cur.end {
				cur.end = max(cur.end, s.end)
				continue
			}
			out = append(out, cur)
			cur = s
		}
		out = append(out, cur)
	}
	sort.Slice(out, func(i, j int) bool { return seniorTo(out[i], out[j]) })
	return out
}

// seniorTo orders stretches by start, then dyno, then process.
func seniorTo(a, b stretch) bool {
	if a.start != b.start {
		return a.start < b.start
	}
	if a.dyno != b.dyno {
		return a.dyno < b.dyno
	}
	return a.process < b.process
}

func computeApp(app string, ivs []Interval, price Price, lo, hi int64) (AppUsage, error) {
	ss := stretches(ivs, hi)
	procs := map[string]*ProcessUsage{}
	dynos := map[string]map[string]bool{}
	proc := func(p string) *ProcessUsage {
		if procs[p] == nil {
			procs[p] = &ProcessUsage{Process: p}
			dynos[p] = map[string]bool{}
		}
		return procs[p]
	}
	// Dyno-seconds are each stretch's seconds inside the window.
	for _, s := range ss {
		a, b := max(s.start, lo), min(s.end, hi)
		if b <= a {
			continue
		}
		pu := proc(s.process)
		pu.DynoSeconds += b - a
		dynos[s.process][s.dyno] = true
	}
	// Free seconds: sweep the stretch boundaries; between two of them the set of
	// running dynos is constant and its senior member takes the free second.
	points := make([]int64, 0, 2*len(ss))
	for _, s := range ss {
		points = append(points, s.start, s.end)
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	var running stretchHeap
	next := 0 // ss is sorted by start: the next stretch to enter the heap
	for i := 0; i+1 < len(points); i++ {
		p, q := points[i], points[i+1]
		if p == q {
			continue
		}
		for next < len(ss) && ss[next].start <= p {
			heap.Push(&running, ss[next])
			next++
		}
		for running.Len() > 0 && running[0].end <= p {
			heap.Pop(&running)
		}
		if running.Len() == 0 {
			continue
		}
		a, b := max(p, lo), min(q, hi)
		if b <= a {
			continue
		}
		proc(running[0].process).FreeSeconds += b - a
	}
	au := AppUsage{App: app}
	names := make([]string, 0, len(procs))
	for p := range procs {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, n := range names {
		pu := procs[n]
		if pu.DynoSeconds == 0 {
			continue
		}
		pu.Dynos = len(dynos[n])
		pu.BilledSeconds = pu.DynoSeconds - pu.FreeSeconds
		c, err := cost(pu.BilledSeconds, price)
		if err != nil {
			return AppUsage{}, fmt.Errorf("app %s process %s: %w", app, n, err)
		}
		pu.Cost = c
		au.Processes = append(au.Processes, *pu)
		au.Dynos += pu.Dynos
		au.DynoSeconds += pu.DynoSeconds
		au.FreeSeconds += pu.FreeSeconds
		au.BilledSeconds += pu.BilledSeconds
		if au.Cost, err = addAmount(au.Cost, c); err != nil {
			return AppUsage{}, fmt.Errorf("app %s: %w", app, err)
		}
	}
	return au, nil
}

// stretchHeap is a min-heap of running stretches by seniority; stretches that ended are
// removed lazily when they reach the top.
type stretchHeap []stretch

func (h stretchHeap) Len() int           { return len(h) }
func (h stretchHeap) Less(i, j int) bool { return seniorTo(h[i], h[j]) }
func (h stretchHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *stretchHeap) Push(x any)        { *h = append(*h, x.(stretch)) }
func (h *stretchHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
