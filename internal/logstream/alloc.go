package logstream

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	nomadapi "github.com/hashicorp/nomad/api"
)

// FollowAlloc copies one log stream ("stdout" or "stderr") of the task of a dyno to out,
// each line prefixed by the dyno's name: the last num lines, then (with follow) whatever
// comes until ctx ends. With num 0 it starts at the stream's beginning, with num < 0 at
// its end (only lines written from now on).
func FollowAlloc(ctx context.Context, nomad *nomadapi.Client, alloc *nomadapi.Allocation, task, name, stream string, follow bool, num int, out *LineWriter) error {
	origin, offset := "end", int64(max(num, 0))*256
	if num == 0 {
		origin = "start"
	}
	frames, errCh := nomad.AllocFS().Logs(alloc, follow, task, stream, origin, offset, ctx.Done(), nil)
	var pending []byte
	first := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-errCh:
			if ok && err != nil {
				return fmt.Errorf("failed to read the %s of %s: %w", stream, name, err)
			}
			errCh = nil
		case f, ok := <-frames:
			if !ok {
				out.FlushLines(name, pending, true, 0)
				return nil
			}
			if f == nil || len(f.Data) == 0 {
				continue
			}
			data := f.Data
			keep := 0
			if first {
				// The stream starts num*256 bytes before the end, or at the start of a
				// shorter log: drop a cut line, and show only the last num lines. A
				// frame's offset is where its data ends.
				if num > 0 && f.Offset > int64(len(f.Data)) {
					if i := bytes.IndexByte(data, '\n'); i >= 0 {
						data = data[i+1:]
					}
				}
				keep = max(num, 0)
			}
			pending = append(pending, data...)
			pending = out.FlushLines(name, pending, false, keep)
			first = false
		}
	}
}

// LineWriter hands on whole lines with their prefix, one writer at a time.
type LineWriter struct {
	mu sync.Mutex
	// Emit takes each line, without its newline.
	Emit func(prefix, text string)
}

// MaxLine is the longest line handed on: a dyno may write any number of bytes without
// a newline, and those who follow its output hold at most this much of it; a longer line
// is handed on in pieces of MaxLine bytes or a little less (not inside a character).
const MaxLine = 64 << 10

// FlushLines writes the complete lines of buf (all of it when final) and returns the
// incomplete rest, of at most MaxLine bytes. With keep > 0 only the last keep lines are
// written.
func (w *LineWriter) FlushLines(prefix string, buf []byte, final bool, keep int) []byte {
	end := bytes.LastIndexByte(buf, '\n')
	if final {
		end = len(buf)
	}
	var lines []string
	if end >= 0 {
		lines = strings.Split(strings.TrimRight(string(buf[:end]), "\n"), "\n")
		if keep > 0 && len(lines) > keep {
			lines = lines[len(lines)-keep:]
		}
	}
	var rest []byte
	if !final && end+1 < len(buf) {
		rest = buf[end+1:]
	}
	for len(rest) > MaxLine {
		i := MaxLine
		for i > MaxLine-utf8.UTFMax && !utf8.RuneStart(rest[i]) {
			i--
		}
		lines, rest = append(lines, string(rest[:i])), rest[i:]
	}
	w.mu.Lock()
	for _, l := range lines {
		if l != "" || !final {
			w.Emit(prefix, l)
		}
	}
	w.mu.Unlock()
	if len(rest) == 0 {
		return nil
	}
	return append([]byte(nil), rest...)
}

// DynoName turns an allocation name ("shop.web[0]") into the dyno's name ("web.1").
func DynoName(allocName string) string {
	i := strings.LastIndexByte(allocName, '[')
	j := strings.LastIndexByte(allocName, ']')
	dot := strings.LastIndexByte(allocName[:max(i, 0)], '.')
	if i < 0 || j < i || dot < 0 {
		return allocName
	}
	n, err := strconv.Atoi(allocName[i+1 : j])
	if err != nil {
		return allocName
	}
	return fmt.Sprintf("%s.%d", allocName[dot+1:i], n+1)
}
