package meter

import (
	"context"
	"fmt"
	"time"
)

// Usage prices the ledger's runs of one app (every app when app is "") over the window
// [since, until). A zero since means from the first record; a zero until means now.
// Runs still open in the ledger are counted up to until, or now if until is later. The price is the one the meter
// published in the ledger's Meta, or DefaultPrice when it published none.
//
// This is what `dyno usage [--app A] [--since T] [--until T] [--json]` prints, with
// Report.WriteText or Report.WriteJSON.
func Usage(ctx context.Context, store Store, app string, since, until time.Time) (Report, error) {
	return usageAt(ctx, store, app, since, until, time.Now())
}

func usageAt(ctx context.Context, store Store, app string, since, until, now time.Time) (Report, error) {
	if until.IsZero() {
		until = now
	}
	if !since.IsZero() && !since.Before(until) {
		return Report{}, fmt.Errorf("window: since %s is not before until %s",
			since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
	}
	meta, err := store.Meta(ctx)
	if err != nil {
		return Report{}, err
	}
	recs, err := store.Runs(ctx, app)
	if err != nil {
		return Report{}, err
	}
	price := meta.Price
	if price == 0 {
		price = DefaultPrice
	}
	ivs := make([]Interval, 0, len(recs))
	for _, r := range recs {
		iv := r.Interval()
		if iv.End.IsZero() && now.Before(until) {
			// A run still open is counted up to now, not into the future.
			iv.End = laterOf(now, iv.Start)
		}
		ivs = append(ivs, iv)
	}
	rep, err := Compute(ivs, price, Window{Since: since, Until: until})
	if err != nil {
		return Report{}, fmt.Errorf("failed to price the ledger: %w", err)
	}
	rep.LedgerAsOf = meta.Checkpoint
	return rep, nil
}

// ParseTime reads a --since or --until value: RFC 3339 ("2026-11-25T12:00:00Z"), a date
// ("2026-11-25", midnight UTC), or a duration before now ("24h", "90m").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-11-25T12:00:00Z), a date (2026-11-25) or a duration ago (24h)", s)
}
