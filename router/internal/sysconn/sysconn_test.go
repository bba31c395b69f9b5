package sysconn

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair is a loopback TCP connection: c wrapped, and its peer.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := Wrap(c).(*Conn)
	if !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	t.Cleanup(func() { sc.Close(); peer.Close() })
	return sc, peer
}

func TestReadWriteAndEOF(t *testing.T) {
	c, peer := pair(t)
	if !c.Alive() {
		t.Fatal("an open connection with nothing to read is not alive")
	}
	big := make([]byte, 4<<20) // more than the socket buffers: the write waits for room
	for i := range big {
		big[i] = byte(i)
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	if n, err := c.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	c.CloseWrite()
	if b := <-got; len(b) != len(big) || b[len(b)-1] != big[len(big)-1] {
		t.Fatalf("the peer read %d bytes, want %d", len(b), len(big))
	}
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	peer.Close()
	b, err := io.ReadAll(c)
	if string(b) != "hello" || err != nil {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v", n, err)
	}
}

func TestDeadlineAndClose(t *testing.T) {
	c, peer := pair(t)
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v", err)
	}
	peer.Write([]byte("x"))
	c.SetReadDeadline(time.Time{})
	if c.Alive() {
		t.Fatal("a connection with unread input is alive")
	}
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

func TestWriteToAClosedPeerFails(t *testing.T) {
	c, peer := pair(t)
	peer.(*net.TCPConn).SetLinger(0) // a reset, not a FIN
	peer.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = c.Write([]byte("x"))
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("Write to a reset connection: %v", err)
	}
	if c.Alive() {
		t.Fatal("a reset connection is alive")
	}
}

func TestWriteAndWait(t *testing.T) {
	c, peer := pair(t)
	go func() {
		b := make([]byte, 5)
		io.ReadFull(peer, b)
		peer.Write(append([]byte("re:"), b...))
	}()
	if n, err := c.WriteAndWait([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("WriteAndWait = %d, %v", n, err)
	}
	b := make([]byte, 8)
	if n, err := io.ReadFull(c, b); n != 8 || err != nil || string(b) != "re:hello" {
		t.Fatalf("read the answer %q, %v", b[:n], err)
	}
	// A request larger than the socket buffers is written whole, as by Write.
	big := make([]byte, 4<<20)
	done := make(chan int64)
	go func() {
		n, _ := io.CopyN(io.Discard, peer, int64(len(big)))
		peer.Write([]byte("k"))
		done <- n
	}()
	if n, err := c.WriteAndWait(big); n != len(big) || err != nil {
		t.Fatalf("WriteAndWait of 4 MiB = %d, %v", n, err)
	}
	if n := <-done; n != int64(len(big)) {
		t.Fatalf("the peer read %d bytes", n)
	}
	// No answer before the deadline: the write succeeds, the next read times out.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.WriteAndWait([]byte("x")); n != 1 || err != nil {
		t.Fatalf("WriteAndWait with no answer = %d, %v", n, err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after an unanswered WriteAndWait: %v", err)
	}
}

// TestExtendDeadlineKeepsOneWithinSlack: a deadline that passes within the slack after
// the one asked for stays; one earlier than asked, one further than the slack, or one
// another call changed meanwhile is replaced by the one asked plus the slack. A deadline
// in force never passes before the one asked. The deadline in force is what a read then
// meets.
func TestExtendDeadlineKeepsOneWithinSlack(t *testing.T) {
	c, peer := pair(t)
	now := time.Now()
	const slack = 100 * time.Millisecond
	check := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) {
			t.Fatalf("%s: deadline in force %v, want %v", what, got.Sub(now), want.Sub(now))
		}
	}
	first := now.Add(time.Hour)
	by, err := c.ExtendDeadline(first, slack)
	if err != nil {
		t.Fatal(err)
	}
	check("none in force", by, first.Add(slack))
	by, _ = c.ExtendDeadline(first.Add(slack/2), slack)
	check("within the slack", by, first.Add(slack))
	by, _ = c.ExtendReadDeadline(first.Add(slack), slack)
	check("read deadline within the slack", by, first.Add(slack))
	by, _ = c.ExtendDeadline(first.Add(slack+time.Millisecond), slack)
	check("later than in force", by, first.Add(2*slack+time.Millisecond))
	by, _ = c.ExtendDeadline(first, slack)
	check("further than the slack", by, first.Add(slack))

	_ = c.SetWriteDeadline(first.Add(time.Minute))
	by, _ = c.ExtendDeadline(first.Add(slack/2), slack)
	check("write deadline changed meanwhile", by, first.Add(slack/2+slack))

	for i := 0; i < 100; i++ {
		asked := first.Add(time.Duration(i) * slack / 7)
		if by, _ := c.ExtendDeadline(asked, slack); by.Before(asked) || by.After(asked.Add(slack)) {
			t.Fatalf("asked %v, in force %v: want from the one asked to the slack after it", asked.Sub(now), by.Sub(now))
		}
	}

	// The deadline in force is the one reads meet: a past one asked (or within the slack
	// of it) is in force, and a read then times out at once.
	past := time.Now().Add(-time.Millisecond)
	_ = c.SetReadDeadline(past)
	by, _ = c.ExtendReadDeadline(past.Add(-slack/2), slack)
	check("read deadline just past", by, past)
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline kept: %v, want a timeout", err)
	}
	// One an hour ahead replaces it: the next read waits for its byte.
	by, _ = c.ExtendReadDeadline(time.Now().Add(time.Hour), slack)
	if by.Equal(past) {
		t.Fatal("a deadline an hour ahead kept the past one")
	}
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read with the deadline %v ahead: %v", time.Until(by), err)
	}
}
