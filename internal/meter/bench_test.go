package meter

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// dayOfDynos is a day of an app scaled at random between 1 and 20 dynos of two
// process types, with restarts: about 850 intervals.
func dayOfDynos() []Interval {
	rng := rand.New(rand.NewSource(1))
	var ivs []Interval
	for d := 0; d < 20; d++ {
		for s := int64(0); s < 86400; {
			start := s + rng.Int63n(600)
			end := start + 1 + rng.Int63n(3600)
			ivs = append(ivs, Interval{App: "demo", Process: []string{"web", "worker"}[d%2],
				Dyno: fmt.Sprint("d", d), Start: at(int(start)), End: at(int(end))})
			s = end
		}
	}
	return ivs
}

// BenchmarkCompute prices a day of 20 dynos with the sweep of Compute and reports how
// many times faster it is than the second-by-second brute force of the tests.
func BenchmarkCompute(b *testing.B) {
	ivs := dayOfDynos()
	w := Window{Until: at(86400)}
	start := time.Now()
	bruteForce(ivs, -1<<62, w.Until.Unix())
	brute := time.Since(start)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compute(ivs, DefaultPrice, w); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(len(ivs)), "intervals")
	b.ReportMetric(float64(brute)/float64(per), "x_faster_than_bruteforce")
}
