package addonhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// Plugin is one running add-on plugin. It is safe for use by one goroutine at a time.
// After a crash or a timeout it is stopped, and every later call fails.
type Plugin struct {
	name string
	host *Host
	// client is the plugin process, or nil for an add-on of Options.InProcess.
	client  *plugin.Client
	impl    addon.Addon
	desc    addon.Description
	stderr  *tail
	exitErr *exitRecorder

	mu      sync.Mutex
	stopped error
}

// Open starts add-on name, configures it with its settings and describes it. The
// caller must Close the Plugin.
func (h *Host) Open(ctx context.Context, name string) (*Plugin, error) {
	var p *Plugin
	if a, ok := h.opts.InProcess[name]; ok {
		p = &Plugin{name: name, host: h, impl: a, stderr: newTail(4096), exitErr: &exitRecorder{}}
	} else {
		var err error
		if p, err = h.start(ctx, name); err != nil {
			return nil, err
		}
	}
	cfg := addon.Config{Settings: h.opts.Settings[name]}
	if h.opts.StateDir != "" {
		cfg.StateDir = filepath.Join(h.opts.StateDir, name)
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			p.Close()
			return nil, &Error{Addon: name, Op: "configure", Kind: KindStart, Err: fmt.Errorf("failed to create the state directory: %w", err)}
		}
	}
	if cfg.Settings == nil {
		cfg.Settings = map[string]string{}
	}
	if err := p.call(ctx, "configure", h.opts.CallTimeout, func(ctx context.Context) error {
		return p.impl.Configure(ctx, cfg)
	}); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.call(ctx, "describe", h.opts.CallTimeout, func(ctx context.Context) error {
		d, err := p.impl.Describe(ctx)
		if err != nil {
			return err
		}
		if err := addon.ValidateDescription(d); err != nil {
			return &Error{Addon: name, Op: "describe", Kind: KindInvalidAnswer, Err: err}
		}
		if d.Name != name && p.client == nil {
			return &Error{Addon: name, Op: "describe", Kind: KindInvalidAnswer,
				Err: fmt.Errorf("the in-process add-on calls itself %q but the host holds it as %q", d.Name, name)}
		}
		if d.Name != name {
			return &Error{Addon: name, Op: "describe", Kind: KindInvalidAnswer,
				Err: fmt.Errorf("the plugin calls itself %q but its binary is %s%s", d.Name, addon.BinaryPrefix, name)}
		}
		p.desc = d
		return nil
	}); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// start starts the plugin binary of add-on name and connects to its add-on service.
func (h *Host) start(ctx context.Context, name string) (*Plugin, error) {
	path, err := h.path(name)
	if err != nil {
		return nil, err
	}
	p := &Plugin{name: name, host: h, stderr: newTail(4096), exitErr: &exitRecorder{}}
	// go-plugin logs to an intercept logger that writes nothing itself; its sinks
	// forward to the host's logger and remember why the process exited.
	logger := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name:   "addon." + name,
		Level:  hclog.Debug,
		Output: io.Discard,
	})
	logger.RegisterSink(p.exitErr)
	logger.RegisterSink(forwardSink{to: h.opts.Logger.Named("addon." + name)})
	cmd := exec.Command(path)
	cmd.Dir = h.opts.PluginDir
	// A process group of its own, so that stopping the plugin also stops whatever it
	// started and left behind holding its output open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = pluginEnv(os.Environ())
	p.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  addon.Handshake,
		VersionedPlugins: addon.PluginSets(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     h.opts.StartTimeout,
		Logger:           logger,
		Stderr:           p.stderr,
		SyncStderr:       p.stderr,
	})
	fail := func(op string, kind Kind, err error) (*Plugin, error) {
		p.kill()
		return nil, &Error{Addon: name, Op: op, Kind: kind, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail("start", KindTimeout, fmt.Errorf("the caller gave up before the start: %w", err))
	}
	type started struct {
		rpc plugin.ClientProtocol
		err error
	}
	startc := make(chan started, 1)
	go func() {
		rpc, err := p.client.Client()
		startc <- started{rpc, err}
	}()
	var rpc plugin.ClientProtocol
	select {
	case s := <-startc:
		if s.err != nil {
			return fail("start", KindStart, p.explainStart(s.err))
		}
		rpc = s.rpc
	case <-ctx.Done():
		// go-plugin cannot stop a start half-way: the process is stopped in the
		// background once its handshake ends or StartTimeout passes.
		go func() {
			<-startc
			p.kill()
		}()
		return nil, &Error{Addon: name, Op: "start", Kind: KindTimeout, Err: fmt.Errorf("the caller gave up during the start: %w", ctx.Err())}
	}
	raw, err := rpc.Dispense(addon.PluginName)
	if err != nil {
		return fail("start", KindStart, fmt.Errorf("the plugin serves no add-on service: %w", err))
	}
	impl, ok := raw.(addon.Addon)
	if !ok {
		return fail("start", KindStart, fmt.Errorf("the plugin served %T, not an add-on", raw))
	}
	p.impl = impl
	return p, nil
}

// Name is the add-on's name.
func (p *Plugin) Name() string { return p.name }

// Description is what the add-on said of itself at Open.
func (p *Plugin) Description() addon.Description { return p.desc }

// Pid is the plugin process's ID, or 0 when it is not running or runs in this process.
func (p *Plugin) Pid() int {
	if p.client == nil {
		return 0
	}
	if rc := p.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Close stops the plugin process (gracefully, then by force after 2 s).
func (p *Plugin) Close() {
	p.kill()
	p.mu.Lock()
	if p.stopped == nil {
		p.stopped = errors.New("the plugin was closed")
	}
	p.mu.Unlock()
}

// killGrace is how long go-plugin may take to stop a plugin before its whole process
// group is killed.
const killGrace = 3 * time.Second

// kill stops the plugin with go-plugin (graceful, then SIGKILL after 2 s), and kills its
// process group: go-plugin waits for the plugin's output to close, which a child the
// plugin left behind would hold open for ever.
func (p *Plugin) kill() { p.stop(false) }

// stop stops the plugin; with force, it kills the process group at once instead of
// asking the plugin to exit (for a plugin that hangs or already died).
func (p *Plugin) stop(force bool) {
	if p.client == nil {
		return // an in-process add-on: no process to stop
	}
	pid := p.Pid()
	if force && pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	done := make(chan struct{})
	go func() {
		p.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(killGrace):
		p.host.opts.Logger.Warn("add-on plugin did not stop, killing its process group", "addon", p.name, "pid", pid)
	}
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	select {
	case <-done:
	case <-time.After(killGrace):
		p.host.opts.Logger.Error("add-on plugin still not stopped; giving up on it", "addon", p.name, "pid", pid)
	}
}

// Provision asks the add-on for the resource of req and checks the answer. The same
// req.RequestID gives the same resource, so a call that failed with a Retryable error
// can be made again.
func (p *Plugin) Provision(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
	if err := addon.ValidateProvisionRequest(req); err != nil {
		return addon.Resource{}, &Error{Addon: p.name, Op: "provision", Kind: KindInvalidRequest, Err: err}
	}
	plan, err := p.desc.ResolvePlan(req.Plan)
	if err != nil {
		return addon.Resource{}, &Error{Addon: p.name, Op: "provision", Kind: KindInvalidRequest, Err: err}
	}
	req.Plan = plan
	var res addon.Resource
	err = p.call(ctx, "provision", p.host.opts.ProvisionTimeout, func(ctx context.Context) error {
		r, err := p.impl.Provision(ctx, req)
		if err != nil {
			return err
		}
		if err := addon.ValidateResource(p.desc, r); err != nil {
			return &Error{Addon: p.name, Op: "provision", Kind: KindInvalidAnswer, Err: err}
		}
		res = r
		return nil
	})
	return res, err
}

// Deprovision asks the add-on to remove a resource; one already gone is success.
func (p *Plugin) Deprovision(ctx context.Context, req addon.DeprovisionRequest) error {
	if err := addon.ValidateDeprovisionRequest(req); err != nil {
		return &Error{Addon: p.name, Op: "deprovision", Kind: KindInvalidRequest, Err: err}
	}
	return p.call(ctx, "deprovision", p.host.opts.ProvisionTimeout, func(ctx context.Context) error {
		return p.impl.Deprovision(ctx, req)
	})
}

// call runs fn with a deadline and turns whatever goes wrong into an *Error. A crash or
// a timeout stops the plugin for good.
func (p *Plugin) call(ctx context.Context, op string, timeout time.Duration, fn func(context.Context) error) (err error) {
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped != nil {
		return &Error{Addon: p.name, Op: op, Kind: KindCrashed, Err: stopped}
	}
	defer func() {
		// A panic here would be a bug in this package or the gRPC stack: report it
		// as the plugin's failure rather than take the caller down.
		if r := recover(); r != nil {
			err = &Error{Addon: p.name, Op: op, Kind: KindInvalidAnswer, Err: fmt.Errorf("the call panicked: %v", r)}
		}
	}()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err = fn(cctx)
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	kind, cause := p.classify(cctx, ctx, err, time.Since(start))
	if kind == KindCrashed || kind == KindTimeout {
		p.mu.Lock()
		p.stopped = fmt.Errorf("the plugin was stopped after an earlier failure: %v", cause)
		p.mu.Unlock()
		p.stop(true)
	}
	return &Error{Addon: p.name, Op: op, Kind: kind, Err: cause}
}

// classify tells a crash from a timeout from the add-on's own error. The plugin's
// message is made one printable line of at most addon.MaxMessage bytes, as a
// Resource.Message must be: it is shown on the user's terminal.
func (p *Plugin) classify(cctx, parent context.Context, err error, took time.Duration) (Kind, error) {
	st, _ := status.FromError(err)
	msg := addon.OneLine(st.Message(), addon.MaxMessage)
	switch {
	case parent.Err() != nil:
		return KindTimeout, fmt.Errorf("the caller gave up after %s: %w", took.Round(time.Millisecond), parent.Err())
	case cctx.Err() != nil || st.Code() == codes.DeadlineExceeded:
		return KindTimeout, fmt.Errorf("the plugin did not answer within %s (it was stopped; a retry with the same request ID is safe)", took.Round(time.Second))
	case st.Code() == codes.Unavailable || st.Code() == codes.Canceled || p.exited():
		msg := "the plugin process exited during the call"
		if !p.exitedSoon() {
			msg = "the connection to the plugin broke during the call"
		}
		if e := p.exitErr.get(); e != "" {
			msg += " (" + e + ")"
		}
		if t := p.stderr.String(); t != "" {
			msg += "; its last output: " + t
		}
		return KindCrashed, errors.New(msg)
	case st.Code() == codes.ResourceExhausted:
		return KindInvalidAnswer, fmt.Errorf("the answer is too large: %s", msg)
	case st.Code() == codes.Internal:
		return KindInvalidAnswer, errors.New(msg)
	case st.Code() == codes.Unimplemented:
		return KindInvalidAnswer, fmt.Errorf("the plugin does not implement the call: %s", msg)
	case st.Code() == codes.InvalidArgument:
		return KindInvalidRequest, errors.New(msg)
	case st.Code() == codes.Unknown, st.Code() == codes.FailedPrecondition:
		return KindRejected, errors.New(msg)
	}
	return KindRejected, fmt.Errorf("%s: %s", st.Code(), msg)
}

// exited says whether the plugin process has exited; an in-process add-on never does.
func (p *Plugin) exited() bool { return p.client != nil && p.client.Exited() }

// exitedSoon waits briefly for go-plugin to notice the process exit that usually
// follows a broken connection.
func (p *Plugin) exitedSoon() bool {
	if p.client == nil {
		return false
	}
	deadline := time.Now().Add(time.Second)
	for {
		if p.client.Exited() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// explainStart turns go-plugin's start errors into what an operator can act on.
// go-plugin's error quotes what the program printed, so it is made one printable line
// of at most addon.MaxMessage bytes, as a plugin's error message is.
func (p *Plugin) explainStart(err error) error {
	text := addon.OneLine(err.Error(), addon.MaxMessage)
	msg := strings.ToLower(text)
	switch {
	case strings.Contains(msg, "incompatible api version"):
		return fmt.Errorf("the plugin speaks another add-on protocol version (this host speaks %d): %s", addon.ProtocolVersion, text)
	case strings.Contains(msg, "unrecognized remote plugin message"):
		return fmt.Errorf("the program is not a Dynogrid add-on plugin (it printed something other than a go-plugin handshake): %s", text)
	case strings.Contains(msg, "timeout"):
		return fmt.Errorf("the plugin did not complete its handshake within %s: %s", p.host.opts.StartTimeout, text)
	}
	if t := p.stderr.String(); t != "" {
		return fmt.Errorf("%s; its last output: %s", text, t)
	}
	return errors.New(text)
}
