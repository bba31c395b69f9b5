package logstream

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Printable returns a log line as text safe to show on a terminal: every control
// character but tab is written as a visible escape, so that a line a dyno wrote cannot
// move the cursor, clear the screen, retitle the window or write the clipboard (OSC 52)
// of whoever reads it. C0 controls and DEL become \xNN (ESC is \x1b), C1 controls \uNNNN
// (CSI is \u009b), and bytes that are not UTF-8 \xNN; everything else, backslashes
// included, is kept as it is. The characters that reorder or break a line's display
// (bidirectional embeddings, overrides and isolates, the line and paragraph separators)
// are written \uNNNN too, so that a line reads as it is.
func Printable(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= utf8.RuneSelf || c < 0x20 && c != '\t' || c == 0x7f {
			break
		}
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 && r != '\t', r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f, reorders(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// reorders says whether r changes how the text around it is laid out: U+200E/F marks,
// U+202A-E embeddings and overrides, U+2066-9 isolates, U+2028/9 separators.
func reorders(r rune) bool {
	return r == 0x200e || r == 0x200f || r >= 0x2028 && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}
