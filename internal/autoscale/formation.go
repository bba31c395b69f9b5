package autoscale

import (
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/deploy"
)

// formationOf is what app runs, from the scale status of its job and the jobs of its
// namespace: the count of process type group, the counts of its other process types,
// and its one-off dynos that run or are starting. A one-off dyno is a job of the app
// other than its own whose meta says process type run (`dyno run`, `dyno
// run:detached`, a scheduled run, a release phase), as the meter bills it; a periodic
// schedule's own job runs nothing, its runs do. A build dyno (process type build) is not
// billed and not counted.
func formationOf(app, group string, st *nomadapi.JobScaleStatusResponse, jobs []*nomadapi.JobListStub) Formation {
	var f Formation
	for g, tg := range st.TaskGroups {
		if g == group {
			f.Current = tg.Desired
		} else {
			f.Others += tg.Desired
		}
	}
	for _, j := range jobs {
		if j.ID == app || j.Meta[deploy.MetaApp] != app || j.Meta[deploy.MetaProcess] != deploy.OneOffProcess || j.JobSummary == nil {
			continue
		}
		for _, s := range j.JobSummary.Summary {
			f.OneOffs += s.Running + s.Starting
		}
	}
	return f
}
