package loadgen

import (
	"container/heap"
	"time"
)

// Ideal is the response time of every request of t under one FIFO queue feeding c
// servers (M/M/c with the trace's own arrivals and service times), with no overhead.
func Ideal(t Trace, c int) []time.Duration {
	free := make(freeHeap, c)
	out := make([]time.Duration, len(t))
	for i, r := range t {
		start := r.At
		if free[0] > start {
			start = free[0]
		}
		free[0] = start + r.Service
		heap.Fix(&free, 0)
		out[i] = start + r.Service - r.At
	}
	return out
}

// Random is the response time of every request of t when each picks one of c
// single-request servers uniformly at random and waits in that server's own queue.
func Random(t Trace, c int, seed uint64) []time.Duration {
	free := make([]time.Duration, c)
	out := make([]time.Duration, len(t))
	x := seed | 1
	for i, r := range t {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		s := int(x % uint64(c))
		start := max(r.At, free[s])
		free[s] = start + r.Service
		out[i] = free[s] - r.At
	}
	return out
}

type freeHeap []time.Duration

func (h freeHeap) Len() int           { return len(h) }
func (h freeHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h freeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *freeHeap) Push(x any)        { *h = append(*h, x.(time.Duration)) }
func (h *freeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
