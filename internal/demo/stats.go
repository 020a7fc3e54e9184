package demo

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"time"
)

// The demo's worker processes send what they measured to the parent as JSON
// lines on their stdout; this file holds those messages and the arithmetic
// the parent does with them.

// Report is one line a demo worker writes: a progress report while it
// runs ("progress"), then once a summary ("summary") with the histograms
// and the tokens it saw.
type Report struct {
	Kind     string     `json:"kind"`
	Worker   int        `json:"worker"`
	Cache    demoCounts `json:"tokencache"`
	Baseline demoCounts `json:"baseline"`
	// Metrics is the worker's OpenTelemetry metrics as text (summary with
	// --otel stdout only).
	Metrics string `json:"metrics,omitempty"`
}

// demoCounts is what one side of a worker (tokencache, or the x/oauth2
// baseline) did. The counters are cumulative.
type demoCounts struct {
	Calls        int64 `json:"calls"`         // loop iterations that finished
	Served       int64 `json:"served"`        // calls the protected resource answered with 200
	Failed       int64 `json:"failed"`        // every other call
	TokenErrors  int64 `json:"token_errors"`  // failed because no token was returned
	InvalidGrant int64 `json:"invalid_grant"` // ... because the refresh was answered invalid_grant
	Unauthorized int64 `json:"unauthorized"`  // the resource answered 401
	// FirstError is the message of the first failure, for the report; it
	// is only filled for tokencache, whose errors never carry a secret.
	FirstError string `json:"first_error,omitempty"`

	// Summary only.
	Latency *latencyHist `json:"latency,omitempty"`
	// Tokens maps a digest of each access token the side was handed (never
	// the token itself) to its expiry in Unix milliseconds.
	Tokens map[string]int64 `json:"tokens,omitempty"`
}

// add adds o's counters, histogram and tokens to c.
func (c *demoCounts) add(o demoCounts) {
	c.Calls += o.Calls
	c.Served += o.Served
	c.Failed += o.Failed
	c.TokenErrors += o.TokenErrors
	c.InvalidGrant += o.InvalidGrant
	c.Unauthorized += o.Unauthorized
	if c.FirstError == "" {
		c.FirstError = o.FirstError
	}
	if o.Latency != nil {
		if c.Latency == nil {
			c.Latency = newLatencyHist()
		}
		c.Latency.merge(o.Latency)
	}
	if len(o.Tokens) > 0 && c.Tokens == nil {
		c.Tokens = make(map[string]int64, len(o.Tokens))
	}
	for k, v := range o.Tokens {
		c.Tokens[k] = v
	}
}

// tokenDigest names an access token in a report without revealing it.
func tokenDigest(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return hex.EncodeToString(sum[:8])
}

// latencyHist is a histogram of durations whose buckets are 2 % wide, so
// that worker processes can send it as a few hundred numbers and the parent
// can merge them and read percentiles within 2 %. Not safe for concurrent
// use.
type latencyHist struct {
	// Buckets counts durations by bucket: 0 holds everything under a
	// microsecond, bucket b ≥ 1 holds [histGrowth^(b-1), histGrowth^b) µs.
	Buckets map[int]int64 `json:"buckets"`
	Count   int64         `json:"count"`
}

const histGrowth = 1.02

func newLatencyHist() *latencyHist { return &latencyHist{Buckets: make(map[int]int64)} }

func histBucket(d time.Duration) int {
	if d < time.Microsecond {
		return 0
	}
	return 1 + int(math.Log(float64(d)/float64(time.Microsecond))/math.Log(histGrowth))
}

// histValue is the geometric middle of bucket b.
func histValue(b int) time.Duration {
	if b <= 0 {
		return time.Microsecond / 2
	}
	lo := math.Pow(histGrowth, float64(b-1))
	return time.Duration(lo * math.Sqrt(histGrowth) * float64(time.Microsecond))
}

func (h *latencyHist) record(d time.Duration) {
	h.Buckets[histBucket(d)]++
	h.Count++
}

func (h *latencyHist) merge(o *latencyHist) {
	for b, n := range o.Buckets {
		h.Buckets[b] += n
	}
	h.Count += o.Count
}

// quantile returns the duration below which a fraction q of the recorded
// durations fall, or 0 when nothing was recorded.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h == nil || h.Count == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.Count)))
	rank = max(rank, 1)
	keys := make([]int, 0, len(h.Buckets))
	for b := range h.Buckets {
		keys = append(keys, b)
	}
	slices.Sort(keys)
	var seen int64
	for _, b := range keys {
		seen += h.Buckets[b]
		if seen >= rank {
			return histValue(b)
		}
	}
	return histValue(keys[len(keys)-1])
}

// countExpiries returns how many of the access tokens, given by their
// expiries, came due while they were current during a run that ended at
// end: a token comes due when it enters the refresh window (its expiry
// minus window), and stops being current when the next token is issued,
// which is that token's expiry minus the lifetime. These are the renewals
// the run needed: a fleet that refreshes once per expiry makes at most this
// many refreshes, and a token refreshed twice makes a successor that was
// replaced before it came due, which is not counted.
func countExpiries(expiries []time.Time, lifetime, window time.Duration, end time.Time) int {
	sorted := slices.Clone(expiries)
	slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
	n := 0
	for i, e := range sorted {
		current := end
		if i+1 < len(sorted) {
			if next := sorted[i+1].Add(-lifetime); next.Before(current) {
				current = next
			}
		}
		if !e.Add(-window).After(current) {
			n++
		}
	}
	return n
}

// tokenExpiries returns the expiries of the tokens of a report.
func tokenExpiries(tokens map[string]int64) []time.Time {
	out := make([]time.Time, 0, len(tokens))
	for _, ms := range tokens {
		out = append(out, time.UnixMilli(ms))
	}
	return out
}

// formatCount writes n with thousands separators: 12,345.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// formatLatency rounds d to three significant digits: 412µs, 1.25ms.
func formatLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d < 100*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
