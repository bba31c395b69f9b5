package router

import (
	"strconv"
	"strings"
	"time"
)

// record is what the router knows about one request by the time it logs it.
type record struct {
	app       *app
	appName   string // the app when app is nil: one that exists in Nomad without web dynos (H14)
	fromPeer  bool   // forwarded by a peer router that proved itself (cluster.forwardedBy)
	code      *Code
	desc      string // overrides code.Desc when set
	method    string
	path      string
	host      string
	requestID string
	fwd       string
	dyno      string
	connect   time.Duration
	queue     int // requests ahead in the queue on arrival
	wait      time.Duration
	service   time.Duration
	status    int
	bytes     int64
	logged    bool
	// handedBack: the request was a peer's, sent back to it unserved (it is served and
	// logged by that peer), so it is neither logged nor counted here.
	handedBack bool
}

// line formats the request in Heroku's router log format:
// at=info method=GET path="/" host=app.example.com request_id=... fwd="1.2.3.4"
// dyno=web.1 connect=0ms queue=0 wait=0ms service=12ms status=200 bytes=512
func (rec *record) line() string {
	var b strings.Builder
	b.Grow(256)
	if rec.code != nil && rec.code.Name != "" {
		b.WriteString("at=error code=")
		b.WriteString(rec.code.Name)
		b.WriteString(" desc=")
		desc := rec.desc
		if desc == "" {
			desc = rec.code.Desc
		}
		b.WriteString(strconv.Quote(desc))
	} else {
		b.WriteString("at=info")
		if rec.code != nil {
			b.WriteString(" desc=")
			b.WriteString(strconv.Quote(rec.code.Desc))
		}
	}
	b.WriteString(" method=")
	b.WriteString(logValue(rec.method))
	b.WriteString(" path=")
	b.WriteString(strconv.Quote(truncate(rec.path, 1024)))
	b.WriteString(" host=")
	b.WriteString(logValue(rec.host))
	b.WriteString(" request_id=")
	b.WriteString(logValue(rec.requestID))
	b.WriteString(" fwd=")
	b.WriteString(strconv.Quote(rec.fwd))
	b.WriteString(" dyno=")
	b.WriteString(logValue(rec.dyno))
	b.WriteString(" connect=")
	b.WriteString(ms(rec.connect))
	b.WriteString(" queue=")
	b.WriteString(strconv.Itoa(rec.queue))
	b.WriteString(" wait=")
	b.WriteString(ms(rec.wait))
	b.WriteString(" service=")
	b.WriteString(ms(rec.service))
	b.WriteString(" status=")
	b.WriteString(strconv.Itoa(rec.status))
	b.WriteString(" bytes=")
	b.WriteString(strconv.FormatInt(rec.bytes, 10))
	return b.String()
}

// ms formats a duration in whole milliseconds, as Heroku does.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// logValue keeps a value on one unquoted token, quoting it when it holds spaces, quotes
// or control characters (a client controls method and host).
func logValue(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '"' || c == '=' || c >= 0x7f {
			return strconv.Quote(truncate(s, 256))
		}
	}
	return truncate(s, 256)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
