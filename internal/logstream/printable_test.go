package logstream

import "testing"

// TestPrintable: terminal control sequences in a line are shown, not run: an OSC 52
// clipboard write, a CSI clear-screen, 8-bit CSI, a carriage return, bytes that are not
// UTF-8, bidirectional overrides and isolates, a line separator. Tabs and other text,
// non-ASCII letters and right-to-left scripts included, are kept.
func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain line, tab\there, café ✓":      "plain line, tab\there, café ✓",
		"\x1b]52;c;ZWNobyBvd25lZA==\x07":     `\x1b]52;c;ZWNobyBvd25lZA==\x07`,
		"before\x1b[2J\x1b[Hafter":           `before\x1b[2J\x1b[Hafter`,
		"8-bit \u009b2J csi":                 `8-bit \u009b2J csi`,
		"progress 10%\rdone":                 `progress 10%\x0ddone`,
		"del\x7f nul\x00 bell\a":             `del\x7f nul\x00 bell\x07`,
		"bad \xff\xfe utf-8 \xc3":            `bad \xff\xfe utf-8 \xc3`,
		`a backslash \x1b stays`:             `a backslash \x1b stays`,
		"user=\u202eexe.txt":                 `user=\u202eexe.txt`,
		"rtl \u2067isolate\u2069 \u200fmark": `rtl \u2067isolate\u2069 \u200fmark`,
		"one\u2028line":                      `one\u2028line`,
		"עברית stays":                        "עברית stays",
		"":                                   "",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
