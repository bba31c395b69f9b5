package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	nomadapi "github.com/hashicorp/nomad/api"
)

type logsCommand struct{ meta }

func (c *logsCommand) Synopsis() string { return "Show the logs of an app's dynos" }
func (c *logsCommand) Help() string {
	return `Usage: dyno logs [options]

  Shows the output of the app's dynos, each line prefixed by its dyno's name.
  With --tail it keeps streaming until Ctrl-C.

Options:
  --tail, -t         Keep streaming new lines
  --dyno=NAME        Only this dyno (web.1)
  --process=TYPE     Only dynos of this process type (worker)
  --num=N, -n N      How many recent lines of each dyno to show (default 100)
` + commonHelp
}

func (c *logsCommand) Run(args []string) int {
	fs := c.flagSet("logs")
	var tail bool
	fs.BoolVar(&tail, "tail", false, "")
	fs.BoolVar(&tail, "t", false, "")
	dyno := fs.String("dyno", "", "")
	process := fs.String("process", "", "")
	var num int
	fs.IntVar(&num, "num", 100, "")
	fs.IntVar(&num, "n", 100, "")
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	if num < 1 || num > 10000 {
		c.ui.Error(fmt.Sprintf("--num %d: show from 1 to 10000 lines", num))
		return 1
	}
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	nomad, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	dynos, err := c.dynos(app, false)
	if err != nil {
		return c.fail(err)
	}
	var picked []Dyno
	for _, d := range dynos {
		if (*dyno == "" || d.Name == *dyno) && (*process == "" || d.Process == *process) {
			picked = append(picked, d)
		}
	}
	if len(picked) == 0 {
		return c.fail(fmt.Errorf("%s has no running dyno that matches (dyno %q, process %q)", app, *dyno, *process))
	}
	ctx, cancel := interruptible()
	defer cancel()
	out := &lineWriter{ui: c.ui}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(picked))
	for _, d := range picked {
		alloc, _, err := nomad.Allocations().Info(d.AllocID, nil)
		if err != nil {
			return c.fail(fmt.Errorf("failed to read %s: %w", d.Name, err))
		}
		for _, stream := range []string{"stdout", "stderr"} {
			wg.Add(1)
			go func(d Dyno, stream string) {
				defer wg.Done()
				if err := streamLog(ctx, nomad, alloc, d, stream, tail, num, out); err != nil {
					errs <- err
				}
			}(d, stream)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if ctx.Err() == nil {
			return c.fail(err)
		}
	}
	return 0
}

// streamLog copies one log stream of a dyno to out, each line prefixed by the dyno's
// name: the last num lines, then (with follow) whatever comes until ctx ends.
func streamLog(ctx context.Context, nomad *nomadapi.Client, alloc *nomadapi.Allocation, d Dyno, stream string, follow bool, num int, out *lineWriter) error {
	frames, errCh := nomad.AllocFS().Logs(alloc, follow, d.Process, stream, "end", int64(num)*256, ctx.Done(), nil)
	var pending []byte
	first := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-errCh:
			if ok && err != nil {
				return fmt.Errorf("failed to read the %s of %s: %w", stream, d.Name, err)
			}
			errCh = nil
		case f, ok := <-frames:
			if !ok {
				out.flushLines(d.Name, pending, true, 0)
				return nil
			}
			if f == nil || len(f.Data) == 0 {
				continue
			}
			data := f.Data
			keep := 0
			if first {
				// The stream starts num*256 bytes before the end: drop the cut line, and
				// show only the last num lines.
				if f.Offset > 0 {
					if i := bytes.IndexByte(data, '\n'); i >= 0 {
						data = data[i+1:]
					}
				}
				keep = num
			}
			pending = append(pending, data...)
			pending = out.flushLines(d.Name, pending, false, keep)
			first = false
		}
	}
}

// lineWriter writes whole prefixed lines, one writer at a time.
type lineWriter struct {
	mu sync.Mutex
	ui interface{ Output(string) }
}

// flushLines writes the complete lines of buf (all of it when final) and returns the
// incomplete rest. With keep > 0 only the last keep lines are written.
func (w *lineWriter) flushLines(prefix string, buf []byte, final bool, keep int) []byte {
	end := bytes.LastIndexByte(buf, '\n')
	if final {
		end = len(buf)
	}
	if end < 0 {
		return buf
	}
	lines := strings.Split(strings.TrimRight(string(buf[:end]), "\n"), "\n")
	if keep > 0 && len(lines) > keep {
		lines = lines[len(lines)-keep:]
	}
	w.mu.Lock()
	for _, l := range lines {
		if l != "" || !final {
			w.ui.Output(prefix + ": " + l)
		}
	}
	w.mu.Unlock()
	if final || end+1 > len(buf) {
		return nil
	}
	return append([]byte(nil), buf[end+1:]...)
}
