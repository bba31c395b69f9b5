package http1

import (
	"net"
	"testing"
	"time"
)

// DrainAcceptQueue returns once the connections queued for accept have been accepted,
// and not before.
func TestDrainAcceptQueueWaitsForQueuedConnections(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Three clients complete their handshake; nobody accepts them yet.
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	done := make(chan struct{})
	go func() { defer close(done); DrainAcceptQueue(ln, 20*time.Second) }()
	select {
	case <-done:
		t.Fatal("DrainAcceptQueue returned with three connections waiting to be accepted")
	case <-time.After(200 * time.Millisecond):
	}
	for i := 0; i < 3; i++ {
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("accepting queued client %d: %v", i, err)
		}
		c.Close()
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("DrainAcceptQueue did not see the accept queue empty")
	}
}
