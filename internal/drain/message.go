package drain

import (
	"strconv"
	"strings"
	"time"
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
	text := m.Text
	if len(text) > maxLine {
		text = text[:maxLine]
	}
	text = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, text)
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
