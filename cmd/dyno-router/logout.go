package main

import (
	"io"
	"sync"
	"time"
)

// Access log lines are batched: one write of standard error per request was a system
// call per request, more than a tenth of the router's CPU at info level.
const (
	accessFlushDelay = 100 * time.Millisecond // the latest a batched line is written
	accessBatchMax   = 32 << 10               // written at once when this much waits
)

// logOutput is the router's log output: access log lines are batched and written at
// most accessFlushDelay late; other lines are written at once, after the lines waiting,
// so that lines keep their order and never interleave.
type logOutput struct {
	mu    sync.Mutex
	out   io.Writer
	buf   []byte
	armed bool // a flush is due
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// direct is the output of lines written at once.
func (o *logOutput) direct() io.Writer { return writerFunc(o.writeNow) }

// batched is the output of access log lines.
func (o *logOutput) batched() io.Writer { return writerFunc(o.writeBatched) }

func (o *logOutput) writeNow(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
	return o.out.Write(p)
}

func (o *logOutput) writeBatched(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	switch {
	case len(o.buf) >= accessBatchMax:
		o.flushLocked()
	case !o.armed:
		o.armed = true
		time.AfterFunc(accessFlushDelay, o.Flush)
	}
	return len(p), nil
}

// Flush writes the lines waiting.
func (o *logOutput) Flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.armed = false
	o.flushLocked()
}

func (o *logOutput) flushLocked() {
	if len(o.buf) == 0 {
		return
	}
	_, _ = o.out.Write(o.buf) // standard error: nowhere to report its failure
	if cap(o.buf) > 4*accessBatchMax {
		o.buf = nil
	} else {
		o.buf = o.buf[:0]
	}
}
