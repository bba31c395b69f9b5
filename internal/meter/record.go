package meter

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// RecordVersion is the version of the ledger record format.
const RecordVersion = 1

// Record is one entry of the ledger: one run of one dyno's task, from the Started event
// to the event that ended it. A record is written when the run starts (without End) and
// rewritten once when it ends; a closed record is final. Its key is derived from the
// allocation ID, the task name and the start time, so writing the same run again (after
// a meter restart, or from both the event stream and the allocation history) rewrites
// the same entry.
type Record struct {
	Version   int    `json:"v"`
	App       string `json:"app"`
	Process   string `json:"process"`
	Namespace string `json:"namespace"`
	Job       string `json:"job"`
	Group     string `json:"group"`
	Alloc     string `json:"alloc"`
	Task      string `json:"task"`
	Node      string `json:"node,omitempty"`
	// Start is the time of the task's Started event (nanoseconds, UTC).
	Start time.Time `json:"start"`
	// End is the time of the event that ended the run; nil while it runs.
	End *time.Time `json:"end,omitempty"`
	// EndReason is the Nomad task event type that ended the run ("Terminated",
	// "Killed", ...), or "task dead", "alloc lost", "alloc gone" when the meter had to
	// infer the end (see docs/metering.md).
	EndReason string `json:"end_reason,omitempty"`
}

// Open says whether the run had not ended when it was last recorded.
func (r Record) Open() bool { return r.End == nil }

// Key is the record's key below the ledger's runs prefix:
// <app>/<alloc>/<task>/<start in Unix nanoseconds>, app and task path-escaped.
func (r Record) Key() string {
	return fmt.Sprintf("%s/%s/%s/%d", url.PathEscape(r.App), url.PathEscape(r.Alloc),
		url.PathEscape(r.Task), r.Start.UnixNano())
}

// Interval is the record as a running interval for Compute.
func (r Record) Interval() Interval {
	iv := Interval{App: r.App, Process: r.Process, Dyno: r.Alloc, Start: r.Start}
	if r.End != nil {
		iv.End = *r.End
	}
	return iv
}

// validate checks a record read from the ledger; key is where it was found.
func (r Record) validate(key string) error {
	var missing []string
	for name, v := range map[string]string{"app": r.App, "alloc": r.Alloc, "task": r.Task} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("ledger record %s: missing %s", key, strings.Join(missing, ", "))
	}
	if r.Version != RecordVersion {
		return fmt.Errorf("ledger record %s: format version %d, this meter reads version %d", key, r.Version, RecordVersion)
	}
	if r.Start.IsZero() {
		return fmt.Errorf("ledger record %s: no start time", key)
	}
	if r.End != nil && r.End.Before(r.Start) {
		return fmt.Errorf("ledger record %s: ends at %s before it starts at %s", key,
			r.End.Format(time.RFC3339Nano), r.Start.Format(time.RFC3339Nano))
	}
	if want := r.Key(); key != "" && want != key {
		return fmt.Errorf("ledger record %s: its content belongs at key %s", key, want)
	}
	return nil
}

// same says whether two records would be stored identically.
func (r Record) same(o Record) bool {
	if r.End == nil || o.End == nil {
		if r.End != o.End {
			return false
		}
	} else if !r.End.Equal(*o.End) {
		return false
	}
	a, b := r, o
	a.End, b.End = nil, nil
	return a.Start.Equal(b.Start) && a.App == b.App && a.Process == b.Process &&
		a.Namespace == b.Namespace && a.Job == b.Job && a.Group == b.Group &&
		a.Alloc == b.Alloc && a.Task == b.Task && a.Node == b.Node && a.EndReason == b.EndReason
}
