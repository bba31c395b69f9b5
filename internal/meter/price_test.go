package meter

import (
	"strings"
	"testing"
)

func TestParsePrice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Price
		err  string
	}{
		{in: "0.05", want: 50_000},
		{in: "$0.05", want: 50_000},
		{in: ".5", want: 500_000},
		{in: "2", want: 2_000_000},
		{in: "0.000001", want: 1},
		{in: " 1.25 ", want: 1_250_000},
		{in: "", err: "empty"},
		{in: "0.0000001", err: "more than six decimals"},
		{in: "-1", err: `'-' is not a digit`},
		{in: "1e3", err: `'e' is not a digit`},
		{in: "0,05", err: `',' is not a digit`},
		{in: "99999999999", err: "more than $1,000,000"},
	} {
		got, err := ParsePrice(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePrice(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePrice(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestAmountRendering(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		billed           int64
		price            Price
		text, usd, exact string
		micros           int64
	}{
		{10800, DefaultPrice, "$0.15", "0.150000", "3/20", 150000},
		{5400, DefaultPrice, "$0.08", "0.075000", "3/40", 75000},
		{60, DefaultPrice, "$0.00", "0.000833", "1/1200", 833},
		{1, DefaultPrice, "$0.00", "0.000014", "1/72000", 14},
		{0, DefaultPrice, "$0.00", "0.000000", "0", 0},
		{3600 * 24 * 30, 1_000_000, "$720.00", "720.000000", "720", 720_000_000},
	} {
		a, err := cost(tc.billed, tc.price)
		if err != nil {
			t.Fatal(err)
		}
		if a.String() != tc.text || a.USD() != tc.usd || a.Exact() != tc.exact || a.Micros() != tc.micros {
			t.Errorf("%d s at %s: got %s %s %s %d, want %s %s %s %d", tc.billed, tc.price,
				a, a.USD(), a.Exact(), a.Micros(), tc.text, tc.usd, tc.exact, tc.micros)
		}
	}
	if _, err := cost(1<<62, DefaultPrice); err == nil {
		t.Error("cost of 2^62 seconds did not report an overflow")
	}
	if got := DefaultPrice.String(); got != "$0.05" {
		t.Errorf("DefaultPrice = %s, want $0.05", got)
	}
}
