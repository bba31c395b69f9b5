package loadgen

import (
	"fmt"
	"slices"
	"time"
)

// Summary is a latency distribution.
type Summary struct {
	N        int
	Errors   int
	P50, P99 time.Duration
	Mean     time.Duration
}

// Summarise computes percentiles of ok latencies (nearest rank).
func Summarise(lat []time.Duration, errors int) Summary {
	s := Summary{N: len(lat), Errors: errors}
	if len(lat) == 0 {
		return s
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	s.P50 = Percentile(sorted, 0.50)
	s.P99 = Percentile(sorted, 0.99)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	s.Mean = sum / time.Duration(len(sorted))
	return s
}

// Percentile of sorted values, nearest rank.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func (s Summary) String() string {
	return fmt.Sprintf("n=%d errors=%d p50=%s p99=%s mean=%s", s.N, s.Errors, ms(s.P50), ms(s.P99), ms(s.Mean))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
