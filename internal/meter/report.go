package meter

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is the priced usage of a window.
type Report struct {
	Since, Until time.Time
	Price        Price
	// LedgerAsOf is the meter's last checkpoint: the ledger reflects every dyno start and
	// stop Nomad knew of at that time. Dynos still open in the ledger are counted up to
	// Until; if Until is after LedgerAsOf the figures past it are provisional. Zero when
	// unknown.
	LedgerAsOf time.Time
	Apps       []AppUsage
	// Totals over all apps.
	DynoSeconds, FreeSeconds, BilledSeconds int64
	Total                                   Amount
}

// AppUsage is one app's usage, with its process types sorted by name.
type AppUsage struct {
	App                                     string
	Dynos                                   int
	DynoSeconds, FreeSeconds, BilledSeconds int64
	Cost                                    Amount
	Processes                               []ProcessUsage
}

// ProcessUsage is the usage of one process type of an app.
type ProcessUsage struct {
	Process string
	// Dynos counts the distinct dynos (allocations) that ran in the window.
	Dynos                                   int
	DynoSeconds, FreeSeconds, BilledSeconds int64
	Cost                                    Amount
}

// App returns the usage of the named app and whether it had any.
func (r Report) App(name string) (AppUsage, bool) {
	for _, a := range r.Apps {
		if a.App == name {
			return a, true
		}
	}
	return AppUsage{}, false
}

// Process returns the usage of one process type and whether it had any.
func (a AppUsage) Process(name string) (ProcessUsage, bool) {
	for _, p := range a.Processes {
		if p.Process == name {
			return p, true
		}
	}
	return ProcessUsage{}, false
}

// Provisional says whether the window reaches past the ledger's last checkpoint by more
// than slack.
func (r Report) Provisional(slack time.Duration) bool {
	return r.LedgerAsOf.IsZero() || r.Until.After(r.LedgerAsOf.Add(slack))
}

// WriteText writes the report as a table for people: one row per app and process type,
// costs to the cent (rounded half up from the exact amount).
func (r Report) WriteText(w io.Writer) error {
	since := "the beginning"
	if !r.Since.IsZero() {
		since = r.Since.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Usage from %s to %s at %s per dyno-hour, first dyno of each app free.\n",
		since, r.Until.UTC().Format(time.RFC3339), r.Price)
	if r.Provisional(time.Minute) {
		if r.LedgerAsOf.IsZero() {
			fmt.Fprintln(w, "The meter has not written a checkpoint: running dynos are counted up to the end of the window.")
		} else {
			fmt.Fprintf(w, "The ledger is up to date as of %s: later figures are provisional.\n",
				r.LedgerAsOf.UTC().Format(time.RFC3339))
		}
	}
	if len(r.Apps) == 0 {
		_, err := fmt.Fprintln(w, "No dyno ran in this window.")
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tPROCESS\tDYNOS\tDYNO-SECONDS\tFREE\tBILLED\tCOST")
	for _, a := range r.Apps {
		for _, p := range a.Processes {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", a.App, p.Process, p.Dynos,
				p.DynoSeconds, p.FreeSeconds, p.BilledSeconds, p.Cost)
		}
		if len(a.Processes) > 1 {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", a.App, "(all)", a.Dynos,
				a.DynoSeconds, a.FreeSeconds, a.BilledSeconds, a.Cost)
		}
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t%d\t%s\n", r.DynoSeconds, r.FreeSeconds, r.BilledSeconds, r.Total)
	return tw.Flush()
}

// jsonReport is the JSON form of a Report. Costs carry three forms: micro-dollars
// (integer, rounded half up), dollars to the micro-dollar as a decimal string, and the
// exact fraction of a dollar.
type jsonReport struct {
	Since             *time.Time `json:"since"`
	Until             time.Time  `json:"until"`
	LedgerAsOf        *time.Time `json:"ledger_as_of"`
	PriceUSDPerHour   string     `json:"price_usd_per_hour"`
	PriceMicroPerHour int64      `json:"price_micro_usd_per_hour"`
	Apps              []jsonApp  `json:"apps"`
	jsonFigures
}

type jsonFigures struct {
	DynoSeconds   int64  `json:"dyno_seconds"`
	FreeSeconds   int64  `json:"free_seconds"`
	BilledSeconds int64  `json:"billed_seconds"`
	CostMicroUSD  int64  `json:"cost_micro_usd"`
	CostUSD       string `json:"cost_usd"`
	CostExactUSD  string `json:"cost_exact_usd"`
}

type jsonApp struct {
	App       string        `json:"app"`
	Dynos     int           `json:"dynos"`
	Processes []jsonProcess `json:"processes"`
	jsonFigures
}

type jsonProcess struct {
	Process string `json:"process"`
	Dynos   int    `json:"dynos"`
	jsonFigures
}

func figures(dyno, free, billed int64, c Amount) jsonFigures {
	return jsonFigures{DynoSeconds: dyno, FreeSeconds: free, BilledSeconds: billed,
		CostMicroUSD: c.Micros(), CostUSD: c.USD(), CostExactUSD: c.Exact()}
}

// MarshalJSON renders the report for programs (`dyno usage --json`).
func (r Report) MarshalJSON() ([]byte, error) {
	j := jsonReport{
		Until:             r.Until.UTC(),
		PriceUSDPerHour:   r.Price.Decimal(),
		PriceMicroPerHour: int64(r.Price),
		Apps:              []jsonApp{},
		jsonFigures:       figures(r.DynoSeconds, r.FreeSeconds, r.BilledSeconds, r.Total),
	}
	if !r.Since.IsZero() {
		s := r.Since.UTC()
		j.Since = &s
	}
	if !r.LedgerAsOf.IsZero() {
		s := r.LedgerAsOf.UTC()
		j.LedgerAsOf = &s
	}
	for _, a := range r.Apps {
		ja := jsonApp{App: a.App, Dynos: a.Dynos, Processes: []jsonProcess{},
			jsonFigures: figures(a.DynoSeconds, a.FreeSeconds, a.BilledSeconds, a.Cost)}
		for _, p := range a.Processes {
			ja.Processes = append(ja.Processes, jsonProcess{Process: p.Process, Dynos: p.Dynos,
				jsonFigures: figures(p.DynoSeconds, p.FreeSeconds, p.BilledSeconds, p.Cost)})
		}
		j.Apps = append(j.Apps, ja)
	}
	return json.Marshal(j)
}

// WriteJSON writes the report as indented JSON followed by a newline.
func (r Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode report: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
