package driver

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/nomad/plugins/shared/hclspec"
)

// Config is the plugin's configuration, from the agent's plugin "nomad-driver-dyno" { config { } } block (Nomad names an external plugin's block after its binary).
type Config struct {
	// SlugDir is the per-host cache of unpacked slugs, one directory per sha256.
	SlugDir string `codec:"slug_dir"`
	// DynoDir holds each dyno's private ./tmp and ./log, outside Nomad's alloc dir.
	DynoDir string `codec:"dyno_dir"`
	// User every dyno runs as.
	User string `codec:"user"`
	// PidsLimit is the default cap on the processes and threads of one dyno.
	PidsLimit int64 `codec:"pids_limit"`
	// CgroupParent is the cgroup under which dynos' cgroups are created.
	CgroupParent string `codec:"cgroup_parent"`
}

var configSpec = hclspec.NewObject(map[string]*hclspec.Spec{
	"slug_dir": hclspec.NewDefault(hclspec.NewAttr("slug_dir", "string", false),
		hclspec.NewLiteral(`"/var/lib/dynogrid/slugs"`)),
	"dyno_dir": hclspec.NewDefault(hclspec.NewAttr("dyno_dir", "string", false),
		hclspec.NewLiteral(`"/var/lib/dynogrid/dynos"`)),
	"user": hclspec.NewDefault(hclspec.NewAttr("user", "string", false),
		hclspec.NewLiteral(`"nobody"`)),
	"pids_limit": hclspec.NewDefault(hclspec.NewAttr("pids_limit", "number", false),
		hclspec.NewLiteral(`256`)),
	"cgroup_parent": hclspec.NewDefault(hclspec.NewAttr("cgroup_parent", "string", false),
		hclspec.NewLiteral(`"dynogrid"`)),
})

var cgroupNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)

func (c *Config) validate() error {
	var errs []error
	if !filepath.IsAbs(c.SlugDir) {
		errs = append(errs, fmt.Errorf("slug_dir: %q must be an absolute path", c.SlugDir))
	}
	if !filepath.IsAbs(c.DynoDir) {
		errs = append(errs, fmt.Errorf("dyno_dir: %q must be an absolute path", c.DynoDir))
	}
	if c.User == "" {
		errs = append(errs, errors.New("user: must name the unprivileged user dynos run as"))
	} else if c.User == "root" || c.User == "0" {
		errs = append(errs, errors.New("user: dynos must not run as root"))
	}
	if c.PidsLimit < 1 {
		errs = append(errs, fmt.Errorf("pids_limit: %d must be at least 1", c.PidsLimit))
	}
	if !cgroupNameRE.MatchString(c.CgroupParent) || strings.Contains(c.CgroupParent, "..") {
		errs = append(errs, fmt.Errorf("cgroup_parent: %q must be a relative cgroup name like \"dynogrid\"", c.CgroupParent))
	}
	return errors.Join(errs...)
}

// TaskConfig is a task's config { } block.
type TaskConfig struct {
	// Command is an absolute path inside the sandbox, or a name looked up in its PATH.
	Command string `codec:"command"`
	// Args are the command's arguments.
	Args []string `codec:"args"`
	// Slug is the release's archive (.tar.gz): an absolute path on the host, or an
	// http(s) URL.
	Slug string `codec:"slug"`
	// SlugSHA256 is the hex sha256 of the archive.
	SlugSHA256 string `codec:"slug_sha256"`
	// PidsLimit overrides the plugin's pids_limit for this task when set.
	PidsLimit int64 `codec:"pids_limit"`
}

var taskConfigSpec = hclspec.NewObject(map[string]*hclspec.Spec{
	"command":     hclspec.NewAttr("command", "string", true),
	"args":        hclspec.NewAttr("args", "list(string)", false),
	"slug":        hclspec.NewAttr("slug", "string", false),
	"slug_sha256": hclspec.NewAttr("slug_sha256", "string", false),
	"pids_limit":  hclspec.NewAttr("pids_limit", "number", false),
})

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (tc *TaskConfig) validate() error {
	var errs []error
	switch {
	case tc.Command == "":
		errs = append(errs, errors.New("command: must not be empty"))
	case strings.ContainsRune(tc.Command, 0):
		errs = append(errs, errors.New("command: must not contain NUL"))
	case strings.Contains(tc.Command, "/") && !filepath.IsAbs(tc.Command):
		errs = append(errs, fmt.Errorf("command: %q must be an absolute path inside the sandbox or a bare name", tc.Command))
	}
	if tc.Slug != "" {
		if err := validateSlugSource(tc.Slug); err != nil {
			errs = append(errs, err)
		}
		if !sha256RE.MatchString(tc.SlugSHA256) {
			errs = append(errs, fmt.Errorf("slug_sha256: %q must be the 64 lowercase hex digits of the slug's sha256", tc.SlugSHA256))
		}
	} else if tc.SlugSHA256 != "" {
		errs = append(errs, errors.New("slug_sha256: set without slug"))
	}
	if tc.PidsLimit < 0 {
		errs = append(errs, fmt.Errorf("pids_limit: %d must not be negative", tc.PidsLimit))
	}
	return errors.Join(errs...)
}

func validateSlugSource(s string) error {
	if filepath.IsAbs(s) {
		if filepath.Clean(s) != s {
			return fmt.Errorf("slug: %q must be a clean absolute path", s)
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("slug: %q must be an absolute path on the host or an http(s) URL", s)
	}
	return nil
}
