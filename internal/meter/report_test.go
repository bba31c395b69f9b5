package meter

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func fourDynos(t *testing.T) Report {
	t.Helper()
	rep, err := Compute([]Interval{
		iv("demo", "web", "a", 0, 3600), iv("demo", "web", "b", 0, 3600),
		iv("demo", "worker", "c", 0, 3600), iv("demo", "worker", "d", 0, 3600),
		iv("solo", "web", "e", 0, 3600),
	}, DefaultPrice, Window{Since: at(0), Until: at(3600)})
	if err != nil {
		t.Fatal(err)
	}
	rep.LedgerAsOf = at(3600)
	return rep
}

func TestReportText(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := fourDynos(t).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `Usage from 2026-11-25T12:00:00Z to 2026-11-25T13:00:00Z at $0.05 per dyno-hour, first dyno of each app free.

APP    PROCESS  DYNOS  DYNO-SECONDS  FREE  BILLED  COST
demo   web      2      7200          3600  3600    $0.05
demo   worker   2      7200          0     7200    $0.10
demo   (all)    4      14400         3600  10800   $0.15
solo   web      1      3600          3600  0       $0.00
TOTAL                  18000         7200  10800   $0.15
`
	if got := b.String(); got != want {
		t.Errorf("text report:\n%s\nwant:\n%s", got, want)
	}
}

func TestReportTextProvisionalAndEmpty(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	rep := Report{Until: at(3600), Price: DefaultPrice, LedgerAsOf: at(60)}
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"from the beginning", "up to date as of 2026-11-25T12:01:00Z", "No dyno ran"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("text report %q does not say %q", b.String(), s)
		}
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := fourDynos(t).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Since      *time.Time `json:"since"`
		LedgerAsOf *time.Time `json:"ledger_as_of"`
		Price      string     `json:"price_usd_per_hour"`
		PriceMicro int64      `json:"price_micro_usd_per_hour"`
		Cost       string     `json:"cost_usd"`
		CostExact  string     `json:"cost_exact_usd"`
		CostMicro  int64      `json:"cost_micro_usd"`
		Billed     int64      `json:"billed_seconds"`
		Apps       []struct {
			App       string `json:"app"`
			Dynos     int    `json:"dynos"`
			Cost      string `json:"cost_usd"`
			Processes []struct {
				Process string `json:"process"`
				Dyno    int64  `json:"dyno_seconds"`
				Free    int64  `json:"free_seconds"`
				Cost    string `json:"cost_usd"`
			} `json:"processes"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, b.String())
	}
	if got.Price != "0.05" || got.PriceMicro != 50000 || got.Cost != "0.150000" || got.CostExact != "3/20" ||
		got.CostMicro != 150000 || got.Billed != 10800 || got.Since == nil || got.LedgerAsOf == nil {
		t.Errorf("totals = %+v", got)
	}
	if len(got.Apps) != 2 || got.Apps[0].App != "demo" || got.Apps[0].Dynos != 4 || got.Apps[0].Cost != "0.150000" ||
		len(got.Apps[0].Processes) != 2 || got.Apps[0].Processes[1].Process != "worker" ||
		got.Apps[0].Processes[1].Free != 0 || got.Apps[0].Processes[1].Cost != "0.100000" {
		t.Errorf("apps = %+v", got.Apps)
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := at(86400)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "", want: time.Time{}},
		{in: "2026-11-25T12:00:00Z", want: at(0)},
		{in: "2026-11-25T13:00:00+01:00", want: at(0)},
		{in: "2026-11-26", want: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
		{in: "24h", want: at(0)},
		{in: "yesterday", err: true},
		{in: "-5m", err: true},
	} {
		got, err := ParseTime(tc.in, now)
		if (err != nil) != tc.err || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %s, %v; want %s (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}
