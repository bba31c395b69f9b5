package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) state() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestAccessLinesAreBatchedAndKeepTheirOrder(t *testing.T) {
	var out lockedBuffer
	o := &logOutput{out: &out}
	for _, l := range []string{"a1\n", "a2\n", "a3\n"} {
		o.batched().Write([]byte(l))
	}
	if s, _ := out.state(); s != "" {
		t.Fatalf("access lines written before their batch was due: %q", s)
	}
	o.direct().Write([]byte("warn\n"))
	if s, n := out.state(); s != "a1\na2\na3\nwarn\n" || n != 2 {
		t.Fatalf("after a direct line: %q in %d writes; want the batch first, in one write", s, n)
	}
	o.batched().Write([]byte("a4\n"))
	testutil.WaitFor(t, 10*time.Second, "the batched line to be written", func() bool {
		s, _ := out.state()
		return strings.HasSuffix(s, "a4\n")
	})
	o.batched().Write(bytes.Repeat([]byte("x"), accessBatchMax))
	if s, _ := out.state(); !strings.HasSuffix(s, "x") {
		t.Fatal("a full batch was not written at once")
	}
}
