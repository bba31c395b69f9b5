// Package build compiles an app's source into the tree of its slug, on the grid: in a
// build dyno, with buildpacks of Heroku's classic contract (docs/design.md, "Builds").
package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynogrid/dynogrid/buildpacks"
	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/slug"
)

// Defaults and limits of a build.
const (
	DefaultTimeout  = 15 * time.Minute
	DefaultMemoryMB = 1024
	// MaxCacheBytes bounds an app's build cache, packed.
	MaxCacheBytes = 1 << 30
	// maxReleaseBytes bounds bin/release's output.
	maxReleaseBytes = 64 << 10
	// maxTailBytes is how much of the build's output is kept to say why it failed.
	maxTailBytes = 4 << 10
)

// ErrBuild means the build ran and failed: the app's code or a buildpack, not the grid.
var ErrBuild = errors.New("build failed")

// Options of a build.
type Options struct {
	// Timeout bounds the build, from the start of its dyno to its last byte.
	Timeout time.Duration
	// MemoryMB is the build dyno's memory limit.
	MemoryMB int
	// Output receives the build's output as it happens.
	Output io.Writer
}

// Result is a built app.
type Result struct {
	// Dir holds the compiled app: what its slug packs. Remove it when done.
	Dir string
	// Buildpacks are the names of the buildpacks that ran, in order.
	Buildpacks []string
	// Release is what the buildpacks' bin/release said; a later buildpack's default
	// process types and config vars win over an earlier one's.
	Release Release
	// Stack is what the slug needs of the stack.
	Stack *appspec.Stack
}

// Needed says whether deploying spec needs a build: its spec names buildpacks, or its
// source has a Gemfile or a package.json. Other apps deploy as they are.
func Needed(spec *appspec.Spec) bool {
	if len(spec.Buildpacks) > 0 {
		return true
	}
	return appspec.HasBuildFile(spec.Dir)
}

// Run builds spec's source in a build dyno of d's grid. The app's build cache goes in
// and comes back; the build's output streams to opts.Output. A failed build returns an
// error wrapping ErrBuild that names the failing step, and changes nothing of the app.
func Run(ctx context.Context, d *deploy.Deployer, spec *appspec.Spec, opts Options) (*Result, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MemoryMB <= 0 {
		opts.MemoryMB = DefaultMemoryMB
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	work, err := os.MkdirTemp("", "dyno-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	// ENV_DIR holds every config var of the release the build makes, as on Heroku: the
	// app's current ones (config:set, add-ons) with the spec's on top.
	env, err := d.ConfigVars(ctx, spec)
	if err != nil {
		return nil, err
	}
	progress(opts.Output, "==> Building %s in a build dyno", spec.Name)
	bpDir := filepath.Join(work, "buildpacks")
	if err := assemble(ctx, bpDir, spec.Buildpacks); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBuild, err)
	}
	tools, err := slug.Pack(bpDir, d.SlugStore)
	if err != nil {
		return nil, err
	}
	source, err := slug.Pack(spec.Dir, filepath.Join(work, "source"))
	if err != nil {
		return nil, err
	}

	id, alloc, err := d.StartBuildDyno(ctx, spec.Name, tools, opts.MemoryMB)
	if err != nil {
		return nil, err
	}
	defer func() { _ = d.StopOneOff(context.WithoutCancel(ctx), id) }()
	cache := cachePath(d.SlugStore, spec.Name)
	out, err := os.MkdirTemp("", "dyno-slug-")
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: out}
	fail := func(err error) (*Result, error) {
		_ = os.RemoveAll(out)
		return nil, err
	}

	stdinR, stdinW := io.Pipe()
	go func() { _ = stdinW.CloseWithError(writeInput(stdinW, source.Path, cache, env)) }()
	stdoutR, stdoutW := io.Pipe()
	received := make(chan error, 1)
	go func() {
		err := readOutput(stdoutR, res, cache)
		if err != nil {
			cancel() // the build's output is unusable: stop the build
		}
		// What follows the archive (tar pads its output to whole records) is read
		// too, or the exec would wait for a reader.
		_, _ = io.Copy(io.Discard, stdoutR)
		received <- err
	}()
	tail := &tailWriter{max: maxTailBytes}
	stderr := io.MultiWriter(opts.Output, tail)
	cmd := []string{"/app/builder/build"}
	code, err := d.Nomad.Allocations().Exec(ctx, alloc, deploy.OneOffProcess, false, cmd, stdinR, stdoutW, stderr, nil, nil)
	_ = stdoutW.Close()
	_ = stdinR.Close()
	rerr := <-received
	switch {
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) && rerr == nil:
		return fail(fmt.Errorf("%w: the build took longer than %s", ErrBuild, opts.Timeout))
	case err != nil:
		return fail(fmt.Errorf("build dyno: %w", err))
	case code != 0:
		return fail(fmt.Errorf("%w: %s", ErrBuild, failedStep(tail.String(), code)))
	case rerr != nil:
		return fail(fmt.Errorf("%w: %v", ErrBuild, rerr))
	case len(res.Buildpacks) == 0:
		return fail(fmt.Errorf("%w: the build dyno sent no compiled app", ErrBuild))
	}
	return res, nil
}

// parseStack reads the build's stack file (lines NAME=VALUE: name, ruby, node) into
// what the slug needs of the stack: the stack it was built on, and the ruby and node
// it used, when the Ruby or Node.js buildpack ran.
func parseStack(b []byte, ran []string) (*appspec.Stack, error) {
	kv := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			if strings.HasPrefix(v, "${") { // Nomad left an attribute the host lacks
				v = ""
			}
			kv[k] = v
		}
	}
	if kv["name"] == "" {
		return nil, errors.New("the build dyno's host has no stack fingerprint; upgrade its dyno driver")
	}
	s := &appspec.Stack{Name: kv["name"]}
	for _, bp := range ran {
		switch bp {
		case "ruby":
			s.Ruby = majorMinor(kv["ruby"], 2)
		case "nodejs":
			s.Node = majorMinor(kv["node"], 1)
		}
	}
	return s, nil
}

// majorMinor is the first n dot-separated parts of version v.
func majorMinor(v string, n int) string {
	parts := strings.SplitN(v, ".", n+1)
	if len(parts) < n {
		return v
	}
	return strings.Join(parts[:n], ".")
}

// failedStep is the step the build's output names as failed, or its exit code.
func failedStep(tail string, code int) string {
	if i := strings.LastIndex(tail, "build failed: "); i >= 0 {
		return strings.TrimSpace(strings.SplitN(tail[i+len("build failed: "):], "\n", 2)[0])
	}
	return fmt.Sprintf("the build exited %d", code)
}

// writeInput writes the build's stdin: src.tar.gz, the cache's cache.tar.gz when the app
// has one, and env/NAME for each config var (ENV_DIR).
func writeInput(w io.Writer, source, cache string, config map[string]string) error {
	tw := tar.NewWriter(w)
	add := func(name string, r io.Reader, size int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.CopyN(tw, r, size)
		return err
	}
	addFile := func(name, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		return add(name, f, st.Size())
	}
	if err := addFile("src.tar.gz", source); err != nil {
		return err
	}
	if _, err := os.Stat(cache); err == nil {
		if err := addFile("cache.tar.gz", cache); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "env/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	for _, k := range deploy.SortedKeys(config) {
		if err := appspec.ValidateConfigKey(k); err != nil { // a name is a file name in ENV_DIR
			return fmt.Errorf("ENV_DIR: %w", err)
		}
		if err := add("env/"+k, strings.NewReader(config[k]), int64(len(config[k]))); err != nil {
			return err
		}
	}
	return tw.Close()
}

// readOutput reads the build's stdout: it unpacks app.tar.gz into res.Dir, stores
// cache.tar.gz as the app's build cache, and reads each buildpack's bin/release output (release/N.yml, in order), buildpacks and stack.
func readOutput(r io.Reader, res *Result, cache string) error {
	tr := tar.NewReader(r)
	var stack []byte
	releases := map[int][]byte{} // by the number of the buildpack that said it
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			for n := 1; n <= len(releases); n++ {
				if err := res.Release.merge(releases[n]); err != nil {
					return err
				}
			}
			res.Stack, err = parseStack(stack, res.Buildpacks)
			return err
		}
		if err != nil {
			return fmt.Errorf("the build dyno's output is not a tar archive: %w", err)
		}
		switch hdr.Name {
		case "app.tar.gz":
			if hdr.Size > slug.MaxSize {
				return fmt.Errorf("the compiled app is larger than slugs may be (%d MB)", slug.MaxSize>>20)
			}
			if err := slug.Unpack(io.LimitReader(tr, hdr.Size), res.Dir); err != nil {
				return fmt.Errorf("the compiled app: %w", err)
			}
		case "cache.tar.gz":
			if hdr.Size > MaxCacheBytes {
				return fmt.Errorf("the build cache is larger than %d MB; it was not kept", MaxCacheBytes>>20)
			}
			if err := storeCache(tr, cache); err != nil {
				return err
			}
		case "buildpacks":
			b, err := readSmall(tr, hdr.Size, 4<<10, "the list of buildpacks")
			if err != nil {
				return err
			}
			res.Buildpacks = strings.Fields(string(b))
		case "stack":
			if stack, err = readSmall(tr, hdr.Size, 4<<10, "the stack"); err != nil {
				return err
			}
		case "release/": // the directory of the entries below
		default:
			if !strings.HasPrefix(hdr.Name, "release/") {
				return fmt.Errorf("the build dyno sent an unknown file %q", hdr.Name)
			}
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "release/"), ".yml"))
			if err != nil || n < 1 || n > appspec.MaxBuildpacks+len(buildpacks.BuiltIn) || releases[n] != nil {
				return fmt.Errorf("the build dyno sent an unknown file %q", hdr.Name)
			}
			if releases[n], err = readSmall(tr, hdr.Size, maxReleaseBytes, "bin/release's output"); err != nil {
				return err
			}
		}
	}
}

func readSmall(r io.Reader, size, limit int64, what string) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%s is longer than %d KB", what, limit>>10)
	}
	return io.ReadAll(io.LimitReader(r, size))
}

func progress(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format+"\n", args...)
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.buf, nil))
}
