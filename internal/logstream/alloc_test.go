package logstream

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDynoName(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"shop.web[0]":          "web.1",
		"shop.worker[9]":       "worker.10",
		"my.app.web[1]":        "web.2",
		"weird":                "weird",
		"shop.web[x]":          "shop.web[x]",
		"shop-run-abcd.run[0]": "run.1",
	}
	for in, want := range cases {
		if got := DynoName(in); got != want {
			t.Errorf("DynoName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFlushLinesBoundsALineWithoutEnd feeds what a dyno writing without a newline gives:
// whoever follows it holds at most MaxLine bytes, hands the rest on in pieces, loses no
// byte and cuts no character.
func TestFlushLinesBoundsALineWithoutEnd(t *testing.T) {
	t.Parallel()
	var got []string
	w := &LineWriter{Emit: func(_, text string) { got = append(got, text) }}
	chunk := []byte(strings.Repeat("é", 10_000)) // 20000 bytes, no newline
	var pending []byte
	for i := 0; i < 100; i++ {
		pending = w.FlushLines("web.1", append(pending, chunk...), false, 0)
		if len(pending) > MaxLine {
			t.Fatalf("after %d chunks %d bytes held: want at most %d", i+1, len(pending), MaxLine)
		}
	}
	w.FlushLines("web.1", append(pending, "\n"...), true, 0)
	total := 0
	for _, l := range got {
		if len(l) > MaxLine || !utf8.ValidString(l) {
			t.Fatalf("a piece of %d bytes (UTF-8: %v): want at most %d, whole characters", len(l), utf8.ValidString(l), MaxLine)
		}
		total += len(l)
	}
	if total != 100*len(chunk) {
		t.Fatalf("%d bytes handed on: want %d", total, 100*len(chunk))
	}
}
