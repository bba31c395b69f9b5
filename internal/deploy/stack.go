package deploy

import (
	"regexp"

	"github.com/dynogrid/dynogrid/internal/appspec"
	nomadapi "github.com/hashicorp/nomad/api"
)

// The node attributes the dyno driver fingerprints of a host's stack (driver/stack.go).
const (
	AttrStack        = "driver.dyno.stack"
	AttrStackVersion = "driver.dyno.stack.version"
	AttrStackRuby    = "driver.dyno.stack.ruby"
	AttrStackNode    = "driver.dyno.stack.node"
)

// MetaStack is the stack a release's slug was built on.
const MetaStack = "dyno.stack"

// addStack makes the job's dynos run only on hosts whose stack has what the slug needs:
// the stack it was built on, and the runtime versions its code was built against. A
// host that lacks them is never picked, so the release waits for room (and says so)
// instead of crashing there.
func addStack(job *nomadapi.Job, s *appspec.Stack) {
	if s == nil {
		return
	}
	job.Meta[MetaStack] = s.Name
	job.Constrain(nomadapi.NewConstraint("${attr."+AttrStack+"}", "=", s.Name))
	if s.Ruby != "" {
		job.Constrain(nomadapi.NewConstraint("${attr."+AttrStackRuby+"}", "regexp", "^"+regexp.QuoteMeta(s.Ruby)+`\.`))
	}
	if s.Node != "" {
		job.Constrain(nomadapi.NewConstraint("${attr."+AttrStackNode+"}", "regexp", "^"+regexp.QuoteMeta(s.Node)+`\.`))
	}
}
