package autoscale

import (
	"context"
	"fmt"
	"sort"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/deploy"
)

// Status is an app's autoscaling as `dyno autoscale` shows it: the web process type's
// policy and the autoscaler's recent decisions, which Nomad keeps in the group's
// scaling events (the latest twenty events of every source).
type Status struct {
	App     string `json:"app"`
	Enabled bool   `json:"enabled"`
	// Policy is set when Enabled.
	Policy    *Policy          `json:"policy,omitempty"`
	Dynos     int              `json:"dynos"`
	Decisions []RecordedChoice `json:"decisions"`
}

// RecordedChoice is one decision the autoscaler wrote to Nomad: a scale (From, To) or
// a hold it noted (To nil).
type RecordedChoice struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	From   int       `json:"from"`
	To     *int      `json:"to,omitempty"`
	Reason string    `json:"reason"`
	Error  bool      `json:"error,omitempty"`
}

// ReadStatus reads app's autoscaling from Nomad, with the app's own token.
func ReadStatus(ctx context.Context, nomad *nomadapi.Client, app string) (*Status, error) {
	q := (&nomadapi.QueryOptions{Namespace: app}).WithContext(ctx)
	job, _, err := nomad.Jobs().Info(app, q)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", app, err)
	}
	st := &Status{App: app, Decisions: []RecordedChoice{}}
	tg := job.LookupTaskGroup("web")
	if tg == nil {
		return st, nil
	}
	if tg.Count != nil {
		st.Dynos = *tg.Count
	}
	if s := tg.Scaling; s != nil && s.Enabled != nil && *s.Enabled {
		p, err := fromNomad(app, s)
		if err != nil {
			return nil, err
		}
		st.Enabled, st.Policy = true, &p
	}
	scale, _, err := nomad.Jobs().ScaleStatus(app, q)
	if err != nil {
		return nil, fmt.Errorf("failed to read how %s was scaled: %w", app, err)
	}
	for _, e := range scale.TaskGroups["web"].Events {
		if e.Meta["Source"] != deploy.AutoscalerSource {
			continue
		}
		kind, _ := e.Meta["Decision"].(string)
		c := RecordedChoice{Time: time.Unix(0, int64(e.Time)), Kind: kind, From: int(e.PreviousCount), Reason: e.Message, Error: e.Error}
		if e.Count != nil {
			to := int(*e.Count)
			c.To = &to
		}
		st.Decisions = append(st.Decisions, c)
	}
	sort.Slice(st.Decisions, func(i, j int) bool { return st.Decisions[i].Time.Before(st.Decisions[j].Time) })
	return st, nil
}
