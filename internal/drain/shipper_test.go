package drain

import (
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
)

func TestProcNameNamesDynosAsHerokuDoes(t *testing.T) {
	t.Parallel()
	release := &nomadapi.Job{Meta: map[string]string{deploy.MetaReleasePhase: "v3"}}
	for _, c := range []struct {
		job, group, alloc string
		spec              *nomadapi.Job
		want              string
	}{
		{"shop", "web", "shop.web[0]", &nomadapi.Job{}, "web.1"},
		{"shop", "worker", "shop.worker[2]", nil, "worker.3"},
		{"shop-run-1a2b3c4d", "run", "shop-run-1a2b3c4d.run[0]", nil, "run.1a2b3c4d"},
		{"shop-run-5e6f7a8b", appspec.ReleaseProcess, "shop-run-5e6f7a8b.release[0]", release, "release.v3"},
		{"shop-runner", "web", "shop-runner.web[0]", nil, "web.1"},
	} {
		a := &nomadapi.Allocation{JobID: c.job, TaskGroup: c.group, Name: c.alloc, Job: c.spec}
		if got := procName("shop", a); got != c.want {
			t.Errorf("procName of %s in job %s = %q, want %q", c.alloc, c.job, got, c.want)
		}
	}
}
