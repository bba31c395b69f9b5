package appspec

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/cronexpr"
	"github.com/hashicorp/hcl/v2"
)

// Limits on schedules; docs/apps.md lists them.
const (
	MaxSchedules = 20
	// MaxCronBytes bounds a schedule's cron expression.
	MaxCronBytes = 100
)

// Schedule is a one-off dyno that runs a command on a cron schedule, as Heroku
// Scheduler does: a Nomad periodic batch job in the app's namespace.
type Schedule struct {
	Name string `json:"name"`
	// Cron is a five-field cron expression (minute hour day month weekday) or one of
	// @hourly, @daily, @weekly, @monthly, @yearly; times are UTC.
	Cron     string `json:"cron"`
	Command  string `json:"command"`
	MemoryMB int    `json:"memory_mb"`
}

type scheduleBlock struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`
	Cron      *string   `hcl:"cron,optional"`
	Command   *string   `hcl:"command,optional"`
	Memory    *int      `hcl:"memory,optional"`

	CronRange    hcl.Range `hcl:"cron,attr_value_range"`
	CommandRange hcl.Range `hcl:"command,attr_value_range"`
	MemoryRange  hcl.Range `hcl:"memory,attr_value_range"`
}

// cronMacros are the named schedules a cron may be, besides five fields.
var cronMacros = map[string]bool{"@hourly": true, "@daily": true, "@midnight": true, "@weekly": true, "@monthly": true, "@yearly": true, "@annually": true}

// ValidateCron says why expr cannot be a schedule's cron, or nil: five fields (minute
// hour day-of-month month day-of-week) or a macro such as @daily, that fires at least
// once. Seconds fields, which Nomad would accept, are refused: a schedule runs at most
// once a minute.
func ValidateCron(expr string) error {
	if len(expr) > MaxCronBytes {
		return fmt.Errorf("the cron expression is %d bytes long; the limit is %d", len(expr), MaxCronBytes)
	}
	fields := strings.Fields(expr)
	if !(len(fields) == 5 || len(fields) == 1 && cronMacros[fields[0]]) {
		return fmt.Errorf("%s is not a cron expression of five fields (minute hour day month weekday), such as \"0 3 * * *\" for 03:00 UTC every day, or a macro such as \"@daily\"", short(expr))
	}
	e, err := cronexpr.Parse(expr)
	if err != nil {
		return fmt.Errorf("%s is not a valid cron expression (%v); write five fields (minute hour day month weekday), such as \"*/10 * * * *\"", short(expr), err)
	}
	if e.Next(time.Now().UTC()).IsZero() {
		return fmt.Errorf("%s never fires; check its day and month fields", short(expr))
	}
	return nil
}

// ValidateScheduleName says why name cannot be a schedule's name, or nil.
func ValidateScheduleName(name string) error {
	if !procNameRe.MatchString(name) {
		return fmt.Errorf("%s is not a schedule name; use lowercase letters, digits and underscores, starting with a letter (at most %d)", short(name), MaxProcessNameLength)
	}
	return nil
}

// NextRun is when cron fires next after from, in UTC; zero when it does not parse.
func NextRun(cron string, from time.Time) time.Time {
	e, err := cronexpr.Parse(cron)
	if err != nil {
		return time.Time{}
	}
	return e.Next(from.UTC())
}

func resolveSchedules(blocks []scheduleBlock, add func(hcl.Range, string, string, ...any)) []Schedule {
	if len(blocks) > MaxSchedules {
		add(blocks[MaxSchedules].DefRange, fmt.Sprintf("Too many schedules (%d; the limit is %d)", len(blocks), MaxSchedules),
			"%s", "Run related tasks from one scheduled command, such as a rake task that does several things.")
		return nil
	}
	var out []Schedule
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		s := Schedule{Name: b.Name, MemoryMB: DefaultMemoryMB}
		ok := true
		if err := ValidateScheduleName(b.Name); err != nil {
			add(b.NameRange, "Invalid schedule name", "%s.", err)
			ok = false
		} else if prev, dup := seen[b.Name]; dup {
			add(b.NameRange, "Duplicate schedule", "Schedule %s is already declared on line %d; keep one block per schedule.", short(b.Name), prev.Start.Line)
			ok = false
		}
		seen[b.Name] = b.NameRange
		switch {
		case b.Cron == nil:
			add(b.DefRange, "Missing cron", "Schedule %s has no cron; add `cron = \"0 3 * * *\"` (minute hour day month weekday, UTC).", short(b.Name))
			ok = false
		default:
			if err := ValidateCron(*b.Cron); err != nil {
				add(b.CronRange, "Invalid cron", "%s.", err)
				ok = false
			}
			s.Cron = strings.Join(strings.Fields(*b.Cron), " ")
		}
		command := ""
		if b.Command != nil {
			command = strings.TrimSpace(*b.Command)
		}
		commandErr := checkCommand("Schedule "+short(b.Name), command)
		switch {
		case b.Command == nil:
			add(b.DefRange, "Missing command", "Schedule %s has no command; add `command = \"...\"`, the command its one-off dyno runs.", short(b.Name))
			ok = false
		case command == "":
			add(b.CommandRange, "Empty command", "Schedule %s has an empty command; write the command its one-off dyno runs.", short(b.Name))
			ok = false
		case commandErr != nil:
			add(b.CommandRange, commandErr.Summary, "%s", commandErr.Detail)
			ok = false
		default:
			s.Command = command
		}
		if b.Memory != nil {
			if *b.Memory < MinMemoryMB || *b.Memory > MaxMemoryMB {
				add(b.MemoryRange, "Memory out of range", "memory is in MB, from %d to %d; %d is not.", MinMemoryMB, MaxMemoryMB, *b.Memory)
				ok = false
			}
			s.MemoryMB = *b.Memory
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}
