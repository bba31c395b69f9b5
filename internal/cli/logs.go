package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dynogrid/dynogrid/internal/deploy"
	nomadapi "github.com/hashicorp/nomad/api"
)

type logsCommand struct{ meta }

func (c *logsCommand) Synopsis() string { return "Show the logs of an app's dynos and router" }
func (c *logsCommand) Help() string {
	return `Usage: dyno logs [options]

  Shows the output of the app's dynos, each line prefixed by its dyno's name, and
  the router's line for each request to the app, prefixed "router". The output
  of the app's last release phases is shown as that of dyno release.vN. Lines are
  merged in time order: a router line's time is when the router logged it, a
  dyno's line's the time dyno logs read it. With --tail it keeps streaming
  until Ctrl-C.

Options:
  --tail, -t         Keep streaming new lines
  --dyno=NAME        Only this dyno (web.1), or "router" for router lines only
  --process=TYPE     Only dynos of this process type (worker)
  --num=N, -n N      How many recent lines of each dyno and router to show
                     (default 100; a router keeps the last 1000 of each app)
  --router=ADDRS     The routers' logs endpoints, comma-separated host:port
                     (default: $DYNO_ROUTERS, or the local grid's router)
` + commonHelp
}

func (c *logsCommand) Run(args []string) int {
	fs := c.flagSet("logs")
	var tail bool
	fs.BoolVar(&tail, "tail", false, "")
	fs.BoolVar(&tail, "t", false, "")
	dyno := fs.String("dyno", "", "")
	process := fs.String("process", "", "")
	routerFlag := fs.String("router", "", "")
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
	routers, err := c.routerAddrs(*routerFlag)
	if err != nil {
		c.ui.Error(err.Error())
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
	onlyRouter := *dyno == "router"
	withRouter := *dyno == "" && *process == "" || onlyRouter
	if onlyRouter && len(routers) == 0 {
		return c.fail(errors.New("--dyno router: no router to read; name its logs endpoint with --router or $DYNO_ROUTERS"))
	}
	var picked []Dyno
	if !onlyRouter {
		dynos, err := c.dynos(app, false)
		if err != nil && !errors.Is(err, deploy.ErrNoApp) {
			return c.fail(err)
		}
		phases, perr := releasePhaseDynos(context.Background(), c.deployerFor(nomad), app)
		if perr != nil || (err != nil && len(phases) == 0) {
			return c.fail(errors.Join(err, perr))
		}
		dynos = append(dynos, phases...)
		for _, d := range dynos {
			if (*dyno == "" || d.Name == *dyno) && (*process == "" || d.Process == *process) {
				picked = append(picked, d)
			}
		}
		if len(picked) == 0 && (!withRouter || len(routers) == 0) {
			return c.fail(fmt.Errorf("%s has no running dyno that matches (dyno %q, process %q)", app, *dyno, *process))
		}
	}
	ctx, cancel := interruptible()
	defer cancel()
	var readers []*routerReader
	if withRouter && len(routers) > 0 {
		key, err := routerLogKey(ctx, nomad, app)
		if err != nil {
			return c.fail(err)
		}
		for _, base := range routers {
			readers = append(readers, newRouterReader(base, app, key))
		}
	}
	m := newLogMerger(c.ui.Output)
	out := &lineWriter{emit: func(prefix, text string) { m.add(logLine{at: time.Now(), prefix: prefix, text: text}) }}
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if ctx.Err() == nil {
			errs = append(errs, err)
		}
	}
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
					fail(err)
				}
			}(d, stream)
		}
	}
	for _, rr := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := followRouter(ctx, rr, num, tail, m, c.ui.Warn); err != nil {
				fail(err)
				cancel() // a router that refuses the key will not take it later
			}
		}()
	}
	printed := make(chan struct{})
	if tail {
		go func() { defer close(printed); m.run(ctx) }()
	} else {
		close(printed)
	}
	wg.Wait()
	<-printed
	m.flush(time.Time{})
	for _, err := range errs {
		c.ui.Error("Error: " + err.Error())
	}
	if len(errs) > 0 {
		return 1
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
				// The stream starts num*256 bytes before the end, or at the start of a
				// shorter log: drop a cut line, and show only the last num lines. A
				// frame's offset is where its data ends.
				if f.Offset > int64(len(f.Data)) {
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

// lineWriter hands on whole lines with their prefix, one writer at a time.
type lineWriter struct {
	mu   sync.Mutex
	emit func(prefix, text string)
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
			w.emit(prefix, l)
		}
	}
	w.mu.Unlock()
	if final || end+1 > len(buf) {
		return nil
	}
	return append([]byte(nil), buf[end+1:]...)
}
