package appspec

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// controls says which control characters a text may hold besides tab.
type controls int

const (
	noControls   controls = iota // tab alone: a path, a one-line command
	lineControls                 // tab and line breaks (LF, CRLF): a command run by sh -c
	anyControls                  // every one but NUL, and bytes that are not UTF-8: a config value
)

// badChar describes the first character of s that s may not hold, or is "" when there
// is none. A NUL byte is never allowed: no command line, environment variable or URL
// can carry one. Unless allow is anyControls, neither are the other control characters
// but tab and what allow lets through (C0, DEL and C1), which a terminal showing s
// would run as escape sequences, nor bytes that are not UTF-8.
func badChar(s string, allow controls) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0:
			return "a NUL byte"
		case allow == anyControls:
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("the byte 0x%02X, which is not UTF-8", s[i])
		case r == '\t':
		case allow == lineControls && (r == '\n' || r == '\r' && i+1 < len(s) && s[i+1] == '\n'):
		case unicode.IsControl(r):
			return fmt.Sprintf("the control character %U", r)
		}
		i += size
	}
	return ""
}
