package demo

import (
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/oauthtest"
)

func TestCountExpiries(t *testing.T) {
	t.Parallel()
	const lifetime, window = 3 * time.Second, time.Second
	t0 := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// A token issued at 0 and renewed when it came due, 2 s later, each time
	// a few milliseconds into the window.
	var chain []time.Time
	for i := range 8 {
		chain = append(chain, at(time.Duration(i)*2010*time.Millisecond+lifetime))
	}
	end := at(15 * time.Second)
	// The 8th token, issued at 14.07 s, comes due at 16.07 s, after the end.
	if got := countExpiries(chain, lifetime, window, end); got != 7 {
		t.Errorf("chain: %d expiries, want 7", got)
	}
	// The same chain where the second token was renewed again 5 ms after it
	// was issued: its successor replaced it before it came due, so the
	// number of expiries stays while the refreshes grow by one.
	double := append([]time.Time{}, chain[:2]...)
	double = append(double, chain[1].Add(5*time.Millisecond))
	double = append(double, chain[2:]...)
	if a, b := countExpiries(chain, lifetime, window, end), countExpiries(double, lifetime, window, end); a != b {
		t.Errorf("a token renewed twice changed the expiries from %d to %d", a, b)
	}
	// Renewed after it expired (no refresh window): still one expiry each.
	late := []time.Time{at(lifetime), at(lifetime + 100*time.Millisecond + lifetime)}
	if got := countExpiries(late, lifetime, 0, at(10*time.Second)); got != 2 {
		t.Errorf("late renewals: %d expiries, want 2", got)
	}
	if got := countExpiries(nil, lifetime, window, end); got != 0 {
		t.Errorf("no tokens: %d expiries", got)
	}
}

func TestLatencyHist(t *testing.T) {
	t.Parallel()
	h := newLatencyHist()
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	other := newLatencyHist()
	other.record(time.Hour)
	h.merge(other)
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Hour}} {
		got := h.quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff < -0.02 || diff > 0.02 {
			t.Errorf("quantile(%v) = %v, want %v within 2%%", tc.q, got, tc.want)
		}
	}
	var empty *latencyHist
	if got := empty.quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %v", got)
	}
	if got := newLatencyHist().quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %v", got)
	}
	if got := histValue(histBucket(300 * time.Nanosecond)); got >= time.Microsecond {
		t.Errorf("sub-microsecond bucket value %v", got)
	}
}

func TestDemoProblems(t *testing.T) {
	t.Parallel()
	ok := demoResult{cache: demoCounts{Calls: 10, Served: 10}, cacheStats: oauthtest.Stats{Requests: 3, Refreshes: 3}, cacheExpiries: 3}
	if p := ok.problems(); len(p) != 0 {
		t.Errorf("a good run has problems: %q", p)
	}
	bad := ok
	bad.cache.Failed, bad.cache.FirstError = 2, "boom"
	bad.cacheStats.Requests, bad.cacheStats.InvalidGrants, bad.cacheStats.Reuses = 4, 1, 1
	p := strings.Join(bad.problems(), "; ")
	for _, want := range []string{"2 tokencache calls failed (first: boom)", "4 refresh requests for 3 token expiries", "refused 1"} {
		if !strings.Contains(p, want) {
			t.Errorf("problems %q lack %q", p, want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}
