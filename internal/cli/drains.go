package cli

import (
	"context"
	"fmt"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/drain"
)

// DrainInfo is one drain as `dyno drains` shows it: its URL, token and what the log
// drain shipper last said of it (nil before it has).
type DrainInfo struct {
	drain.Drain
	Status *drain.Status `json:"status,omitempty"`
}

type drainsCommand struct{ meta }

func (c *drainsCommand) Synopsis() string { return "List an app's log drains" }
func (c *drainsCommand) Help() string {
	return `Usage: dyno drains [options]

  Lists the app's log drains, each with its token (written into every line it
  is sent) and what the log drain shipper last said of it: lines sent, lines
  dropped because the drain was down and its buffer full, lines waiting, and
  the last error.
` + commonHelp
}

func (c *drainsCommand) Run(args []string) int {
	app, code := c.appOnly("drains", args)
	if code >= 0 {
		return code
	}
	nomad, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	drains, err := drain.List(ctx, nomad, app)
	if err != nil {
		return c.fail(err)
	}
	status, err := drain.ReadStatus(ctx, nomad, app)
	if err != nil {
		return c.fail(err)
	}
	infos := []DrainInfo{}
	for _, d := range drains {
		info := DrainInfo{Drain: d}
		if st, ok := status[d.Token]; ok {
			info.Status = &st
		}
		infos = append(infos, info)
	}
	if c.json {
		return c.printJSON(infos)
	}
	if len(infos) == 0 {
		c.ui.Output(fmt.Sprintf("%s has no drains.", app))
		return 0
	}
	c.ui.Output(fmt.Sprintf("=== %s drains", app))
	for _, d := range infos {
		c.ui.Output(fmt.Sprintf("%s (%s)", d.URL, d.Token))
		switch st := d.Status; {
		case st == nil:
			c.ui.Output("  not shipped yet")
		default:
			line := fmt.Sprintf("  sent %d, dropped %d, buffered %d (at %s)", st.Sent, st.Dropped, st.Buffered, st.Updated.Format("2006-01-02 15:04:05Z"))
			if st.Error != "" {
				line += "; last error: " + st.Error
			}
			c.ui.Output(line)
		}
	}
	return 0
}

type drainsAddCommand struct{ meta }

func (c *drainsAddCommand) Synopsis() string { return "Add a log drain to an app" }
func (c *drainsAddCommand) Help() string {
	return fmt.Sprintf(`Usage: dyno drains:add [options] URL

  Sends the app's log lines (its dynos' output and its router lines) to URL:
  syslog://host:port or syslog+tls://host:port (RFC 5424, octet-counted), or
  https://host/path (batches, as Heroku's HTTPS drains post them). An app has
  at most %d drains; a URL has at most %d bytes.
`, drain.MaxDrains, drain.MaxURLLen) + commonHelp
}

func (c *drainsAddCommand) Run(args []string) int {
	return c.changeDrains("drains:add", args, func(ctx context.Context, nomad *nomadapi.Client, app, raw string) (string, error) {
		// The shipper reads the app's router lines with its router log key: make sure it has one.
		if _, err := routerLogKey(ctx, nomad, app); err != nil {
			return "", err
		}
		d, err := drain.Add(ctx, nomad, app, raw)
		return fmt.Sprintf("Successfully added drain %s (%s)", d.URL, d.Token), err
	})
}

type drainsRemoveCommand struct{ meta }

func (c *drainsRemoveCommand) Synopsis() string { return "Remove a log drain from an app" }
func (c *drainsRemoveCommand) Help() string {
	return `Usage: dyno drains:remove [options] URL|TOKEN

  Stops sending the app's log lines to the drain of that URL (or token).
` + commonHelp
}

func (c *drainsRemoveCommand) Run(args []string) int {
	return c.changeDrains("drains:remove", args, func(ctx context.Context, nomad *nomadapi.Client, app, which string) (string, error) {
		d, err := drain.Remove(ctx, nomad, app, which)
		return "Successfully removed drain " + d.URL, err
	})
}

// changeDrains runs a command that takes one URL and changes the app's drains with
// change, which returns what to print.
func (m *meta) changeDrains(name string, args []string, change func(ctx context.Context, nomad *nomadapi.Client, app, url string) (string, error)) int {
	fs := m.flagSet(name)
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() != 1 {
		m.ui.Error(fmt.Sprintf("%s takes one URL, for example `dyno %s syslog+tls://logs.example.com:6514`", name, name))
		return 1
	}
	app, err := m.appName()
	if err != nil {
		return m.fail(err)
	}
	nomad, err := m.nomad(app)
	if err != nil {
		return m.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	said, err := change(ctx, nomad, app, fs.Arg(0))
	if err != nil {
		return m.fail(err)
	}
	m.ui.Output(said)
	return 0
}
