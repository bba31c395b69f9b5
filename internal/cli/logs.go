package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/logstream"
)

type logsCommand struct{ meta }

func (c *logsCommand) Synopsis() string { return "Show the logs of an app's dynos and router" }
func (c *logsCommand) Help() string {
	return `Usage: dyno logs [options]

  Shows the output of the app's dynos, each line prefixed by its dyno's name
  (web.1, run.1234 for a one-off dyno, scheduler.nightly.1765000000 for a
  scheduled run, whose output stays while Nomad keeps its job), and the
  router's line for each request to the app, prefixed "router". The output
  of the app's last release phases is shown as that of dyno release.vN. Lines are
  merged in time order: a router line's time is when the router logged it, a
  dyno's line's the time dyno logs read it. With --tail it keeps streaming
  until Ctrl-C. Control characters other than tab are printed as visible
  escapes (ESC as \x1b), so that no line can drive the terminal.

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
		// One-off dynos and scheduled runs that ended keep their output here.
		dynos, err := c.dynos(app, true)
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
	var readers []*logstream.RouterReader
	if withRouter && len(routers) > 0 {
		key, err := routerLogKey(ctx, nomad, app)
		if err != nil {
			return c.fail(err)
		}
		for _, base := range routers {
			readers = append(readers, logstream.NewRouterReader(base, app, key))
		}
	}
	m := newLogMerger(c.ui.Output)
	out := &logstream.LineWriter{Emit: func(prefix, text string) { m.add(logLine{at: time.Now(), prefix: prefix, text: text}) }}
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
				if err := logstream.FollowAlloc(ctx, nomad, alloc, d.Process, d.Name, stream, tail, num, out); err != nil {
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
