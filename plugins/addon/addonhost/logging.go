package addonhost

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// forwardSink passes go-plugin's lines (and the plugin's, which go-plugin re-logs) to
// the host's logger.
type forwardSink struct {
	to hclog.Logger
}

func (f forwardSink) Accept(_ string, level hclog.Level, msg string, args ...interface{}) {
	f.to.Log(level, msg, args...)
}

// exitRecorder remembers why go-plugin says the plugin process exited.
type exitRecorder struct {
	mu  sync.Mutex
	msg string
}

var _ hclog.SinkAdapter = (*exitRecorder)(nil)

func (r *exitRecorder) Accept(_ string, _ hclog.Level, msg string, args ...interface{}) {
	if msg != "plugin process exited" {
		return
	}
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "error" {
			r.mu.Lock()
			r.msg = fmt.Sprint(args[i+1])
			r.mu.Unlock()
		}
	}
}

func (r *exitRecorder) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

// tail keeps the last bytes the plugin wrote on stderr, for error messages. Its own
// JSON log lines below warning level are left out: they say nothing about a failure.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if quietLogLine(b) {
		return len(b), nil
	}
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(b), nil
}

// String returns the last few lines, joined on one line. Each is made one printable
// line of at most addon.MaxMessage bytes, as a plugin's error message is.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(string(t.buf), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	for i, l := range lines {
		lines[i] = addon.OneLine(l, addon.MaxMessage)
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}

func quietLogLine(b []byte) bool {
	var entry struct {
		Level string `json:"@level"`
	}
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &entry) != nil {
		return false
	}
	l := hclog.LevelFromString(entry.Level)
	return l != hclog.NoLevel && l < hclog.Warn
}
