package drain

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Priorities, as Heroku's drains send them: local7.info for a dyno's output, local3.info
// for the router's lines (facility*8 + severity).
const (
	priorityApp    = 190
	priorityRouter = 158
)

// Message is one log line of an app, to be sent to its drains.
type Message struct {
	Time time.Time
	// Proc is where the line comes from: "router" or a dyno's name ("web.1").
	Proc string
	Text string
}

// maxLine is the longest line text sent; longer ones are cut (a dyno's line can be any
// length; a drain's receiver takes messages of bounded size).
const maxLine = 8 << 10

// Frame is the message as RFC 5424 syslog, octet-counted as RFC 6587 frames it: the
// drain's token as HOSTNAME, "heroku" (router lines) or "app" as APP-NAME and the line's
// source as PROCID, as Heroku's drains write them:
//
//	83 <190>1 2026-12-06T05:00:00.123456+00:00 d.1b2c... app web.1 - Hello
func (m Message) Frame(token string) []byte {
	pri, appName := priorityApp, "app"
	if m.Proc == "router" {
		pri, appName = priorityRouter, "heroku"
	}
	// Cut before and after: a byte that is not UTF-8 becomes three.
	text := cut(strings.Map(oneLine, cut(m.Text, maxLine)), maxLine)
	var b strings.Builder
	b.WriteString("<")
	b.WriteString(strconv.Itoa(pri))
	b.WriteString(">1 ")
	b.WriteString(m.Time.UTC().Format("2006-01-02T15:04:05.000000+00:00"))
	b.WriteByte(' ')
	b.WriteString(field(token))
	b.WriteByte(' ')
	b.WriteString(appName)
	b.WriteByte(' ')
	b.WriteString(field(m.Proc))
	b.WriteString(" - - ")
	b.WriteString(text)
	msg := b.String()
	return []byte(strconv.Itoa(len(msg)) + " " + msg)
}

// cut shortens s to at most n bytes, not inside a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// oneLine keeps a line's text on one line for any receiver: line breaks (CR, LF, NEL,
// U+2028, U+2029) and other control characters (NUL, ESC...) become spaces, so that a
// dyno's output cannot end its message and forge another one, to a receiver that splits
// on them rather than counting octets. A tab stays; bytes that are not UTF-8 become U+FFFD.
func oneLine(r rune) rune {
	if r == '\t' {
		return r
	}
	if r < ' ' || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029' {
		return ' '
	}
	return r
}

// field makes s a syslog header field: printable ASCII without spaces, "-" when empty.
func field(s string) string {
	s = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	if len(s) > 48 {
		s = s[:48]
	}
	return s
}
