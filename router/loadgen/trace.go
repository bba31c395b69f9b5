// Package loadgen is an open-loop HTTP load generator for routing benchmarks: a seeded
// Poisson trace of requests, each with its own service time, replayed against any
// target with latency measured from each request's scheduled send time (so a slow
// target cannot slow the arrivals down: no coordinated omission), single-request
// backends that honour the trace's service times, and the ideal single-queue (M/M/c)
// result computed offline from the same trace.
package loadgen

import (
	"math"
	"math/rand/v2"
	"time"
)

// Request is one request of a trace.
type Request struct {
	At      time.Duration // send time, from the start of the run
	Service time.Duration // time the backend spends on it
}

// Trace is a replayable sequence of requests.
type Trace []Request

// Poisson makes n requests arriving at rate per second with exponential service times
// of the given mean. The same seed gives the same trace.
func Poisson(seed uint64, n int, rate float64, meanService time.Duration) Trace {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t := make(Trace, n)
	var at float64
	for i := range t {
		at += rng.ExpFloat64() / rate
		t[i] = Request{
			At:      time.Duration(at * float64(time.Second)),
			Service: time.Duration(rng.ExpFloat64() * float64(meanService)),
		}
	}
	return t
}

// HeavyShape is the Weibull shape of the heavy-tailed service times: with 0.46, 1% of
// requests take more than about 12 times the mean, and they make half of the work.
const HeavyShape = 0.46

// Weibull is Poisson with heavy-tailed service times: Weibull of the given shape,
// scaled to the given mean.
func Weibull(seed uint64, n int, rate float64, meanService time.Duration, shape float64) Trace {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	scale := float64(meanService) / math.Gamma(1+1/shape)
	t := make(Trace, n)
	var at float64
	for i := range t {
		at += rng.ExpFloat64() / rate
		t[i] = Request{
			At:      time.Duration(at * float64(time.Second)),
			Service: time.Duration(scale * math.Pow(rng.ExpFloat64(), 1/shape)),
		}
	}
	return t
}

// RateFor is the arrival rate that loads c servers of the given mean service time to
// utilisation u.
func RateFor(u float64, c int, meanService time.Duration) float64 {
	return u * float64(c) / meanService.Seconds()
}

// Duration is the time from the start to the last arrival.
func (t Trace) Duration() time.Duration {
	if len(t) == 0 {
		return 0
	}
	return t[len(t)-1].At
}

// Lengthened returns t with every service time longer by d: the trace a single queue
// serves when each hand-off of a backend to its next request costs d of idle time.
func (t Trace) Lengthened(d time.Duration) Trace {
	out := make(Trace, len(t))
	for i, r := range t {
		out[i] = r
		out[i].Service += d
	}
	return out
}
