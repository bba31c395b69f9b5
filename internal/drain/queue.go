package drain

import "sync"

// queue holds a drain's frames until they are sent, up to max bytes: past that the oldest
// are dropped and counted, so that whoever adds never waits.
type queue struct {
	mu      sync.Mutex
	frames  [][]byte
	bytes   int
	max     int
	dropped uint64
	wake    chan struct{}
}

func newQueue(max int) *queue { return &queue{max: max, wake: make(chan struct{}, 1)} }

// push adds a frame, dropping the oldest ones past the bound.
func (q *queue) push(f []byte) {
	q.mu.Lock()
	q.frames = append(q.frames, f)
	q.bytes += len(f)
	q.trim()
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// unshift puts back frames that could not be sent, in front, as far as the bound allows.
func (q *queue) unshift(fs [][]byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.frames = append(append([][]byte(nil), fs...), q.frames...)
	for _, f := range fs {
		q.bytes += len(f)
	}
	q.trim()
}

func (q *queue) trim() {
	n := 0
	for q.bytes > q.max && n < len(q.frames) {
		q.bytes -= len(q.frames[n])
		n++
	}
	if n > 0 {
		q.frames = q.frames[n:]
		q.dropped += uint64(n)
	}
}

// take removes up to maxFrames frames of at most maxBytes in all (at least one).
func (q *queue) take(maxFrames, maxBytes int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, size := 0, 0
	for n < len(q.frames) && n < maxFrames && (n == 0 || size+len(q.frames[n]) <= maxBytes) {
		size += len(q.frames[n])
		n++
	}
	out := q.frames[:n:n]
	q.frames = q.frames[n:]
	q.bytes -= size
	return out
}

// counts returns the frames waiting and those dropped so far.
func (q *queue) counts() (waiting int, dropped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames), q.dropped
}
