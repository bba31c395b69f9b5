package driver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/nomad/plugins/drivers"
	"github.com/shoenig/test/must"
)

func TestLayout_HostPathAndCommand(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	app := t.TempDir()
	must.NoError(t, os.MkdirAll(filepath.Join(app, "bin"), 0o755))
	must.NoError(t, os.WriteFile(filepath.Join(app, "bin", "web"), []byte("#!/bin/sh\n"), 0o755))
	must.NoError(t, os.WriteFile(filepath.Join(app, "README"), nil, 0o644))
	must.NoError(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must.NoError(t, os.Symlink("app/tmp", filepath.Join(root, "tmp")))
	l := &layout{Root: root, Mounts: []*drivers.MountConfig{
		{TaskPath: "/usr", HostPath: "/usr"},
		{TaskPath: "/app", HostPath: app},
	}, Scratch: scratchDirs}
	paths := []struct{ in, want string }{
		{"/usr/bin/env", "/usr/bin/env"},
		{"/bin/sh", "/usr/bin/sh"},
		{"/app/bin/web", filepath.Join(app, "bin/web")},
		// The dyno's tmpfs have no host path.
		{"/app/tmp/x", ""},
		{"/app/log", ""},
		{"/tmp/x", ""},
		{"/app/tmpfoo", filepath.Join(app, "tmpfoo")},
		{"/app/../etc/passwd", ""},
		{"/opt/x", ""},
	}
	for _, p := range paths {
		must.Eq(t, p.want, l.hostPath(p.in), must.Sprintf("hostPath(%q)", p.in))
	}
	commands := []struct{ cmd, want, wantErr string }{
		{"/bin/sh", "/bin/sh", ""},
		{"sh", "/usr/bin/sh", ""},
		{"web", "/app/bin/web", ""},
		{"/app/README", "", "not an executable file"},
		{"/etc/passwd", "", "not an executable file"},
		{"nope", "", "not found in the sandbox PATH"},
	}
	for _, c := range commands {
		got, err := l.resolveCommand(c.cmd, "/app/bin:/usr/bin:/bin")
		if c.wantErr != "" {
			must.ErrorContains(t, err, c.wantErr)
			continue
		}
		must.NoError(t, err)
		must.Eq(t, c.want, got)
	}
}
