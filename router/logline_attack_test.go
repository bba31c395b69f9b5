package router

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseRouterLine reads a router line as a log reader does: space-separated key=value
// pairs, a value bare or Go-quoted. It fails on anything else.
func parseRouterLine(line string) (map[string]string, error) {
	out := map[string]string{}
	for rest := line; rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return nil, fmt.Errorf("at %q: want key=value", rest)
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", key, err)
			}
			val, _ = strconv.Unquote(q)
			after = after[len(q):]
		} else {
			val, after, _ = strings.Cut(after, " ")
			after = " " + after
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key %s twice", key)
		}
		out[key] = val
		if after = strings.TrimPrefix(after, " "); after != "" && after == rest {
			return nil, fmt.Errorf("stuck at %q", rest)
		}
		rest = after
	}
	return out, nil
}

// TestRouterLinesCannotBeForgedByTheClient sends what a client controls (method, Host,
// path, X-Request-Id, X-Forwarded-For) with every trick to end the line or add a field:
// spaces, quotes, "=", line ends, NUL, escapes, text that is not UTF-8. The line still
// parses into exactly the router's fields, each holding what the client sent, and the
// numbers the router measured.
func TestRouterLinesCannotBeForgedByTheClient(t *testing.T) {
	t.Parallel()
	tricks := []string{
		`x status=500 dyno=web.9`, `x" status="500`, "x\nat=info status=200", "x\r\n\x00\x1b[2K",
		"x\u2028status=1", "\xff\xfe status=1", `\" status=1`, `=`, `"`, "",
	}
	fields := []string{"at", "method", "path", "host", "request_id", "fwd", "dyno", "connect", "queue", "wait", "service", "status", "bytes"}
	for _, s := range tricks {
		rec := &record{method: s, path: "/" + s, host: s, requestID: s, fwd: s, dyno: "web.1",
			connect: time.Millisecond, service: 12 * time.Millisecond, status: 200, bytes: 512}
		line := rec.line()
		if strings.ContainsAny(line, "\r\n\x00\u2028") {
			t.Errorf("client value %q: line %q holds a line end", s, line)
		}
		got, err := parseRouterLine(line)
		if err != nil {
			t.Errorf("client value %q: line %q does not parse: %v", s, line, err)
			continue
		}
		if len(got) != len(fields) {
			t.Errorf("client value %q: line %q has fields %v: want exactly %v", s, line, got, fields)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		for _, k := range []string{"method", "host", "request_id", "fwd"} {
			if g := strings.ToValidUTF8(got[k], "\ufffd"); g != want {
				t.Errorf("client value %q: %s=%q in line %q", s, k, got[k], line)
			}
		}
		if got["status"] != "200" || got["dyno"] != "web.1" || got["bytes"] != "512" || got["service"] != "12ms" || got["at"] != "info" {
			t.Errorf("client value %q: the router's fields changed: %v", s, got)
		}
	}
}
