package drain

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseURLAcceptsTheThreeKinds(t *testing.T) {
	t.Parallel()
	for raw, kind := range map[string]string{
		"syslog://logs.example.com:514":          Syslog,
		"syslog+tls://logs.example.com:6514":     SyslogTLS,
		"syslog+tls://192.0.2.1:6514/":           SyslogTLS,
		"https://u:p@logs.example.com/in?tag=a":  HTTPS,
		"https://logs.example.com:8443/drain/v1": HTTPS,
	} {
		u, err := ParseURL(raw)
		if err != nil || u.Kind != kind {
			t.Errorf("ParseURL(%q) = %+v, %v: want a %s drain", raw, u, err, kind)
		}
	}
}

func TestParseURLNamesWhatIsWrong(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"":                                  "no scheme",
		"logs.example.com:514":              "scheme",
		"http://logs.example.com/":          `scheme "http" is not supported`,
		"ftp://logs.example.com/":           `scheme "ftp" is not supported`,
		"syslog://logs.example.com":         "no port",
		"syslog://logs.example.com:0":       "port",
		"syslog://logs.example.com:99999":   "port",
		"syslog://u:p@logs.example.com:514": "no user, path",
		"syslog://logs.example.com:514/x":   "no user, path",
		"syslog+tls://:6514":                "no host",
		"https:///path":                     "no host",
		"https://bad_host-.example.com/":    "not a valid host name",
		"https://logs.example.com/#frag":    "no fragment",
		"https://logs.example.com/a b":      "space or control character",
		"https://logs.example.com/\x00":     "space or control character",
		"https://logs.example.com/" + strings.Repeat("a", MaxURLLen): "at most 1024",
		"syslog://2130706433:514":                                    "decimal, octal or hex",
		"syslog://0x7f000001:514":                                    "decimal, octal or hex",
		"syslog://0x7f.1:514":                                        "decimal, octal or hex",
		"syslog://0177.0.0.1:514":                                    "decimal, octal or hex",
		"syslog://127.1:514":                                         "decimal, octal or hex",
		"https://169.254.43518/":                                     "decimal, octal or hex",
		"https://[fe80::1%25eth0]/":                                  "zone",
	} {
		_, err := ParseURL(raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURL(%q): error %v, want one saying %q", raw, err, want)
		}
	}
}

func TestFrameIsOctetCountedRFC5424(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 5, 0, 0, 123456000, time.UTC)
	got := string(Message{Time: at, Proc: "web.1", Text: "hello\nworld"}.Frame("d.x"))
	want := "<190>1 2026-12-06T05:00:00.123456+00:00 d.x app web.1 - - hello world"
	if want = strconv.Itoa(len(want)) + " " + want; got != want {
		t.Fatalf("frame %q: want %q", got, want)
	}
	got = string(Message{Time: at, Proc: "router", Text: "at=info"}.Frame("d.x"))
	if !strings.Contains(got, " <158>1 ") || !strings.Contains(got, " d.x heroku router - - at=info") {
		t.Fatalf("router frame %q: want priority 158, app-name heroku, procid router", got)
	}
	long := string(Message{Time: at, Proc: "web.1", Text: strings.Repeat("x", 3*maxLine)}.Frame("d.x"))
	if len(long) > maxLine+100 {
		t.Fatalf("a long line makes a frame of %d bytes: want it cut to %d", len(long), maxLine)
	}
}
