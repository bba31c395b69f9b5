package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/dynogrid/dynogrid/internal/autoscale"
)

type autoscaleCommand struct{ meta }

func (c *autoscaleCommand) Synopsis() string {
	return "Show an app's autoscaling policy and the autoscaler's recent decisions"
}

func (c *autoscaleCommand) Help() string {
	return `Usage: dyno autoscale [options]

  Shows the autoscale policy of the app's web dynos (the autoscale block of its
  spec: min, max, p95_queue_wait, max_cost_per_hour) and the autoscaler's recent
  decisions, oldest first: each scale, and each time it held the count at the cost
  cap or max, or for want of figures, with why. Nomad keeps the latest twenty
  scaling events of the process type. The autoscaler logs every decision.
` + commonHelp
}

func (c *autoscaleCommand) Run(args []string) int {
	app, code := c.appOnly("autoscale", args)
	if code >= 0 {
		return code
	}
	nomad, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	st, err := autoscale.ReadStatus(context.Background(), nomad, app)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(st)
	}
	if !st.Enabled {
		c.ui.Output(fmt.Sprintf("%s does not autoscale: its web process has no autoscale block. Add one to its spec, e.g.\n"+
			"  autoscale {\n    min = 1\n    max = 20\n    p95_queue_wait = \"50ms\"\n    max_cost_per_hour = 0.50\n  }\nin process \"web\", and deploy.", app))
		return 0
	}
	p := st.Policy
	dynos := fmt.Sprintf("%d dynos", st.Dynos)
	if st.Dynos == 1 {
		dynos = "1 dyno"
	}
	c.ui.Output(fmt.Sprintf("=== %s web: %s, autoscaled from %d to %d to keep the p95 queue wait under %s, at most $%.2f/hour",
		app, dynos, p.Min, p.Max, p.Target, float64(p.MaxCostMicroUSD)/1e6))
	if len(st.Decisions) == 0 {
		c.ui.Output("No decision recorded yet: the autoscaler notes its scales, and its holds at the cost cap, max or for want of figures.")
		return 0
	}
	for _, d := range st.Decisions {
		what := fmt.Sprintf("%s, held at %d", d.Kind, d.From)
		if d.To != nil {
			what = fmt.Sprintf("%s from %d to %d", d.Kind, d.From, *d.To)
		}
		if d.Error {
			what += " (failed)"
		}
		c.ui.Output(fmt.Sprintf("%s (%s ago) %s: %s", d.Time.Format("2006-01-02 15:04:05"),
			time.Since(d.Time).Round(time.Second), what, d.Reason))
	}
	return 0
}
