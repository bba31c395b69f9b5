package cli

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/internal/deploy"
)

// ReleaseInfo is one release as `dyno releases` shows it.
type ReleaseInfo struct {
	Version     string    `json:"version"`
	Description string    `json:"description"`
	Created     time.Time `json:"created"`
	Current     bool      `json:"current"`
	// Status is "failed" for a release whose release phase failed: it never ran.
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

type releasesCommand struct{ meta }

func (c *releasesCommand) Synopsis() string { return "List an app's releases" }
func (c *releasesCommand) Help() string {
	return `Usage: dyno releases [options]

  Lists the app's releases, newest first: each deploy, config change and
  rollback makes one. A release whose release phase failed is listed as failed,
  with why; it never ran.
` + commonHelp
}

func (c *releasesCommand) Run(args []string) int {
	app, code := c.appOnly("releases", args)
	if code >= 0 {
		return code
	}
	nomad, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	failed, err := c.deployerFor(nomad).FailedReleases(context.Background(), app)
	if err != nil {
		return c.fail(err)
	}
	versions, _, _, err := nomad.Jobs().Versions(app, false, nil)
	if err != nil && !(apierr.IsStatus(err, http.StatusNotFound) && len(failed) > 0) {
		return c.fail(fmt.Errorf("failed to read the releases of %s: %w", app, err))
	}
	var releases []ReleaseInfo
	seen := map[string]bool{}
	for i, v := range versions { // newest first
		name := v.Meta[deploy.MetaRelease]
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		releases = append(releases, ReleaseInfo{Version: name, Description: v.Meta[deploy.MetaDescription],
			Created: time.Unix(0, int64(*v.SubmitTime)), Current: i == 0})
	}
	// A release's time is that of its first version; versions after it are scales.
	for i := range releases {
		for _, v := range versions {
			if v.Meta[deploy.MetaRelease] == releases[i].Version {
				releases[i].Created = time.Unix(0, int64(*v.SubmitTime))
			}
		}
	}
	releases = withFailed(releases, failed)
	if c.json {
		return c.printJSON(releases)
	}
	c.ui.Output(fmt.Sprintf("=== %s releases", app))
	for _, r := range releases {
		mark := " "
		if r.Current {
			mark = "*"
		}
		c.ui.Output(fmt.Sprintf("%s %-5s %-40s %s", mark, r.Version, r.Description, r.Created.Format("2006-01-02 15:04:05")))
		if r.Status != "" {
			c.ui.Output(fmt.Sprintf("        %s: %s", r.Status, r.Reason))
		}
	}
	return 0
}

// withFailed adds the failed releases to releases, newest first by release number.
func withFailed(releases []ReleaseInfo, failed []deploy.FailedRelease) []ReleaseInfo {
	for _, f := range failed {
		releases = append(releases, ReleaseInfo{Version: deploy.ReleaseName(f.Version), Description: f.Description,
			Created: f.Created, Status: "failed", Reason: f.Reason})
	}
	number := func(r ReleaseInfo) int { n, _ := strconv.Atoi(strings.TrimPrefix(r.Version, "v")); return n }
	sort.SliceStable(releases, func(i, j int) bool { return number(releases[i]) > number(releases[j]) })
	return releases
}

type rollbackCommand struct{ meta }

func (c *rollbackCommand) Synopsis() string { return "Roll back to an earlier release" }
func (c *rollbackCommand) Help() string {
	return `Usage: dyno rollback [options] [vN]

  Makes a new release with the code and config vars of release vN (default: the
  one before the current), keeping the current dyno counts.
` + commonHelp
}

func (c *rollbackCommand) Run(args []string) int {
	fs := c.flagSet("rollback")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	version := 0
	switch fs.NArg() {
	case 0:
	case 1:
		n, err := strconv.Atoi(strings.TrimPrefix(fs.Arg(0), "v"))
		if err != nil || n < 1 {
			c.ui.Error(fmt.Sprintf("%q is not a release; write it like v3", fs.Arg(0)))
			return 1
		}
		version = n
	default:
		c.ui.Error("rollback takes at most one release")
		return 1
	}
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	d, err := c.deployer(app)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	v, err := d.Rollback(ctx, app, version)
	if err != nil {
		return c.fail(err)
	}
	c.ui.Output(fmt.Sprintf("==> %s is at release v%d", app, v))
	return 0
}
