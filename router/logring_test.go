package router

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLogRingKeepsTheLastLinesWithinItsBounds(t *testing.T) {
	t.Parallel()
	g := newLogRing()
	t0 := time.Unix(1700000000, 0)
	for i := 1; i <= ringLines+5; i++ {
		g.add(t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("line %d", i))
	}
	lines, last, _ := g.since(0, ringLines)
	if len(lines) != ringLines || lines[0].Seq != 6 || last != ringLines+5 {
		t.Fatalf("after %d lines the ring holds %d from seq %d (last %d), want the last %d", ringLines+5, len(lines), lines[0].Seq, last, ringLines)
	}
	if lines, last, _ := g.since(ringLines+3, 10); len(lines) != 2 || lines[0].Line != fmt.Sprintf("line %d", ringLines+4) || last != ringLines+5 {
		t.Fatalf("since %d: %+v (last %d), want the 2 lines after it", ringLines+3, lines, last)
	}
	if lines, last, _ := g.since(0, 3); len(lines) != 3 || lines[2].Seq != ringLines+5 || last != ringLines+5 {
		t.Fatalf("the last 3: %+v (last %d)", lines, last)
	}
	if lines, last, _ := g.since(ringLines+5, 10); len(lines) != 0 || last != ringLines+5 {
		t.Fatalf("nothing new: %+v (last %d), want none and the same last", lines, last)
	}

	big := newLogRing()
	long := strings.Repeat("x", 4096)
	for i := 0; i < 200; i++ {
		big.add(t0, long)
	}
	lines, _, _ = big.since(0, ringLines)
	if n := len(lines) * len(long); n > ringBytes || len(lines) != ringBytes/len(long) {
		t.Fatalf("200 lines of 4 KiB: the ring holds %d (%d bytes), want the last %d within %d bytes", len(lines), n, ringBytes/len(long), ringBytes)
	}
}

func TestLogRingWakesItsReaders(t *testing.T) {
	t.Parallel()
	g := newLogRing()
	_, last, changed := g.since(0, 10)
	go g.add(time.Now(), "at=info")
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("a reader waiting for the first line was not woken when it came")
	}
	if lines, _, _ := g.since(last, 10); len(lines) != 1 || lines[0].Line != "at=info" || lines[0].Seq != 1 {
		t.Fatalf("after the wake-up: %+v", lines)
	}
}

func TestLogRingsDropAppsThatAreGone(t *testing.T) {
	t.Parallel()
	var l logRings
	l.add("shop", time.Now(), "a")
	l.add("gone", time.Now(), "b")
	l.keep(func(app string) bool { return app == "shop" })
	if _, ok := l.rings["gone"]; ok || l.rings["shop"] == nil {
		t.Fatalf("rings after keep: %v, want only shop's", l.rings)
	}
}
