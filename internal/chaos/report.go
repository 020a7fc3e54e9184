package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Gates is the set of scenarios whose gates are enforced, parsed from a
// comma-separated list: scenario names, "all" (every scenario the issues
// gate) or "none".
type Gates map[string]bool

// ParseGates parses a gate list such as "baseline,cuts" or "all". Unknown
// names are an error, so that a typo cannot switch a gate off.
func ParseGates(list string) (Gates, error) {
	g := Gates{}
	known := map[string]bool{}
	for _, s := range Scenarios() {
		known[s.Name] = true
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "" || name == "none":
		case name == "all":
			for n := range known {
				g[n] = true
			}
		case known[name]:
			g[name] = true
		default:
			return nil, fmt.Errorf("chaos: unknown scenario %q in the gate list", name)
		}
	}
	return g, nil
}

// Check returns why r fails its gates ("" when it passes or is not gated).
func (g Gates) Check(r Result) []string {
	s := r.Scenario
	if !g[s.Name] || r.Skipped != "" {
		return nil
	}
	var why []string
	if r.Err != nil {
		why = append(why, "run error: "+r.Err.Error())
	}
	if s.GateLost && r.Lost > 0 {
		why = append(why, fmt.Sprintf("%d users lost", r.Lost))
	}
	if s.GateValid && r.FailedHeld > 0 {
		why = append(why, fmt.Sprintf("%d calls failed while their process had served the user a token still valid", r.FailedHeld))
	}
	if s.GateRatio && (r.Refreshes == 0 || r.Requests != r.Refreshes) {
		why = append(why, fmt.Sprintf("%.3f refresh requests per expiry (%d requests, %d refreshes), want 1.0", r.Ratio(), r.Requests, r.Refreshes))
	}
	return why
}

// gatedText says what the issues gate for s.
func gatedText(s Scenario) string {
	var parts []string
	if s.GateLost {
		parts = append(parts, "lost")
	}
	if s.GateValid {
		parts = append(parts, "valid")
	}
	if s.GateRatio {
		parts = append(parts, "1.0")
	}
	if len(parts) == 0 {
		return "no"
	}
	return strings.Join(parts, "+")
}

func dur(d time.Duration) string {
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// WriteTable writes the results as a Markdown table, then the details
// (reasons users were lost, error classes, gate failures).
func WriteTable(w io.Writer, results []Result, g Gates) {
	fmt.Fprintln(w, "| scenario | gated (issue) | enforced | users lost | failed while valid: process / server | failed, of calls | refreshes per expiry | recovery | takeover | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		s := r.Scenario
		enforced := "no"
		if g[s.Name] {
			enforced = "yes"
		}
		if r.Skipped != "" {
			fmt.Fprintf(w, "| %s | %s | %s | — | — | — | — | — | — | skipped: %s |\n", s.Name, gatedText(s), enforced, r.Skipped)
			continue
		}
		rec := "—"
		if r.Faults > 0 {
			rec = dur(r.Recovery)
			if r.Unrecovered > 0 {
				rec += fmt.Sprintf(" (%d users never)", r.Unrecovered)
			}
		}
		take := "—"
		switch {
		case r.Takeovers > 0 && r.Missed > 0:
			take = fmt.Sprintf("%s (%d later than the wait)", dur(r.Takeover), r.Missed)
		case r.Takeovers > 0:
			take = dur(r.Takeover)
		case r.Missed > 0:
			take = fmt.Sprintf("later than the wait (%d)", r.Missed)
		}
		verdict := "ok"
		if why := g.Check(r); len(why) > 0 {
			verdict = "**FAIL**"
		} else if !g[s.Name] {
			verdict = "reported"
		}
		if r.Err != nil && !g[s.Name] {
			verdict = "error"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d of %d | %d / %d | %d of %d | %.2f (%d/%d) | %s | %s | %s |\n",
			s.Name, gatedText(s), enforced, r.Lost, r.Users, r.FailedHeld, r.FailedValid, r.Failed, r.Calls,
			r.Ratio(), r.Requests, r.Refreshes, rec, take, verdict)
	}
	fmt.Fprintln(w)
	for _, r := range results {
		if r.Skipped != "" {
			continue
		}
		var lines []string
		if r.Err != nil {
			lines = append(lines, "run error: "+r.Err.Error())
		}
		for _, why := range sortedKeys(r.LostWhy) {
			lines = append(lines, fmt.Sprintf("lost: %d × %s", r.LostWhy[why], why))
		}
		lines = append(lines, r.Timelines...)
		for _, e := range topErrs(r.Errs, 3) {
			lines = append(lines, "failure: "+e)
		}
		for _, why := range g.Check(r) {
			lines = append(lines, "GATE: "+why)
		}
		if len(lines) > 0 {
			fmt.Fprintf(w, "- %s (%s): %s\n", r.Scenario.Name, dur(r.Elapsed), strings.Join(lines, "; "))
		}
	}
	for _, r := range results {
		for _, t := range r.Traces {
			fmt.Fprintf(w, "\n%s, %s\n", r.Scenario.Name, t)
		}
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func topErrs(m map[string]int, n int) []string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	var out []string
	for i, k := range keys {
		if i == n {
			break
		}
		out = append(out, fmt.Sprintf("%d × %q", m[k], k))
	}
	return out
}
