package meter

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// DefaultPrice is the price of a dyno-hour when none is configured: $0.05.
const DefaultPrice Price = 50_000

// Price is the price of one dyno-hour in micro-dollars (millionths of a US dollar).
type Price int64

// ParsePrice reads a price in dollars per dyno-hour such as "0.05" or "$0.05", with at
// most six decimals.
func ParsePrice(s string) (Price, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "$")
	if t == "" {
		return 0, fmt.Errorf("price %q: empty, want dollars per dyno-hour such as 0.05", s)
	}
	whole, frac, _ := strings.Cut(t, ".")
	if whole == "" {
		whole = "0"
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("price %q: more than six decimals (the ledger counts micro-dollars)", s)
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("price %q: %q is not a digit, want dollars per dyno-hour such as 0.05", s, c)
			}
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 1_000_000 {
		return 0, fmt.Errorf("price %q: more than $1,000,000 per dyno-hour", s)
	}
	frac += strings.Repeat("0", 6-len(frac))
	f, _ := strconv.ParseInt(frac, 10, 64)
	return Price(w*1_000_000 + f), nil
}

// String renders the price in dollars, e.g. "$0.05".
func (p Price) String() string { return "$" + microString(int64(p), true) }

// Decimal renders the price in dollars without the sign, e.g. "0.05".
func (p Price) Decimal() string { return microString(int64(p), true) }

// Amount is an exact sum of money in units of 1/3600 of a micro-dollar, so that one
// dyno-second at a price in micro-dollars per hour is an integer: cost = seconds x price.
type Amount int64

// amountPerMicro is how many Amount units make a micro-dollar.
const amountPerMicro = 3600

var errOverflow = errors.New("amount overflows the ledger's 64-bit arithmetic")

// cost is the exact price of billed dyno-seconds.
func cost(billed int64, p Price) (Amount, error) {
	if billed == 0 || p == 0 {
		return 0, nil
	}
	r := billed * int64(p)
	if r/int64(p) != billed {
		return 0, errOverflow
	}
	return Amount(r), nil
}

func addAmount(a, b Amount) (Amount, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, errOverflow
	}
	return s, nil
}

// Micros is the amount in micro-dollars, rounded half up.
func (a Amount) Micros() int64 { return roundHalfUp(int64(a), amountPerMicro) }

// Cents is the amount in cents, rounded half up from the exact amount.
func (a Amount) Cents() int64 { return roundHalfUp(int64(a), amountPerMicro*10_000) }

// Rat is the exact amount in dollars.
func (a Amount) Rat() *big.Rat { return big.NewRat(int64(a), amountPerMicro*1_000_000) }

// Exact is the exact amount in dollars as a reduced fraction, e.g. "3/20".
func (a Amount) Exact() string { return a.Rat().RatString() }

// USD is the amount in dollars to the micro-dollar, rounded half up, e.g. "0.150000".
func (a Amount) USD() string { return microString(a.Micros(), false) }

// String is the amount in dollars to the cent, rounded half up, e.g. "$0.15".
func (a Amount) String() string {
	c := a.Cents()
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s$%d.%02d", sign, c/100, c%100)
}

// roundHalfUp divides n by d (d > 0) rounding halves away from zero.
func roundHalfUp(n, d int64) int64 {
	if n < 0 {
		return -roundHalfUp(-n, d)
	}
	q, r := n/d, n%d
	if 2*r >= d {
		q++
	}
	return q
}

// microString renders micro-dollars as dollars with six decimals, or with trailing zeros
// trimmed to at least two decimals when trim is set.
func microString(m int64, trim bool) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	frac := fmt.Sprintf("%06d", m%1_000_000)
	if trim {
		frac = strings.TrimRight(frac, "0")
		for len(frac) < 2 {
			frac += "0"
		}
	}
	return fmt.Sprintf("%s%d.%s", sign, m/1_000_000, frac)
}
