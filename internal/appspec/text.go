package appspec

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// badChar describes the first character of s that s may not hold, or is "" when there
// is none. A NUL byte is never allowed: no command line, environment variable or URL
// can carry one. Unless allowControls, neither are the other control characters but
// tab (C0, DEL and C1), which a terminal showing s would run as escape sequences, nor
// bytes that are not UTF-8.
func badChar(s string, allowControls bool) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0:
			return "a NUL byte"
		case allowControls:
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("the byte 0x%02X, which is not UTF-8", s[i])
		case unicode.IsControl(r) && r != '\t':
			return fmt.Sprintf("the control character %U", r)
		}
		i += size
	}
	return ""
}
