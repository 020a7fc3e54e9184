package chaos

import (
	"strings"
	"testing"
	"time"
)

func scenario(t *testing.T, name string) Scenario {
	t.Helper()
	for _, s := range Scenarios() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scenario %q", name)
	return Scenario{}
}

func TestParseGates(t *testing.T) {
	tests := []struct {
		list    string
		want    []string
		wantErr bool
	}{
		{list: "", want: nil},
		{list: "none", want: nil},
		{list: "baseline, cuts", want: []string{"baseline", "cuts"}},
		{list: "all", want: []string{"baseline", "refuse", "rollback"}},
		{list: "baseline,refuze", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			g, err := ParseGates(tt.list)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error for an unknown scenario")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tt.want {
				if !g[n] {
					t.Errorf("%q not gated", n)
				}
			}
			if tt.list == "all" && len(g) != len(Scenarios()) {
				t.Errorf("all gates %d scenarios, want %d", len(g), len(Scenarios()))
			}
			if len(tt.want) == 0 && len(g) != 0 {
				t.Errorf("gates %v, want none", g)
			}
		})
	}
}

func TestGatesCheck(t *testing.T) {
	g, err := ParseGates("all")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    Result
		want string // substring of the failure, "" for a pass
	}{
		{"baseline clean", Result{Scenario: scenario(t, "baseline"), Requests: 10, Refreshes: 10}, ""},
		{"baseline double refresh", Result{Scenario: scenario(t, "baseline"), Requests: 11, Refreshes: 10}, "refresh requests per expiry"},
		{"baseline no refresh at all", Result{Scenario: scenario(t, "baseline")}, "refresh requests per expiry"},
		{"cuts failed while valid", Result{Scenario: scenario(t, "cuts"), FailedHeld: 1}, "still valid"},
		{"cuts failed while only the server had a token", Result{Scenario: scenario(t, "cuts"), FailedValid: 3}, ""},
		{"sigstop valid not gated", Result{Scenario: scenario(t, "sigstop-holder"), FailedValid: 5}, ""},
		{"sigstop lost", Result{Scenario: scenario(t, "sigstop-holder"), Lost: 1}, "1 users lost"},
		{"kill-after-answer not gated", Result{Scenario: scenario(t, "kill-after-answer"), Lost: 3}, ""},
		{"skipped", Result{Scenario: scenario(t, "restart"), Skipped: "no record", Lost: 30}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(g.Check(tt.r), "; ")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("Check = %q, want %q", got, tt.want)
			}
		})
	}
	none, _ := ParseGates("none")
	if why := none.Check(Result{Scenario: scenario(t, "cuts"), Lost: 5}); len(why) != 0 {
		t.Fatalf("an ungated scenario failed: %v", why)
	}
}

func TestValidAt(t *testing.T) {
	a := &authServer{valid: map[string][]interval{}, revokedAt: map[string]time.Time{}}
	t0 := time.Now()
	a.valid["u"] = []interval{{t0, t0.Add(3 * time.Second)}, {t0.Add(5 * time.Second), t0.Add(8 * time.Second)}}
	a.revokedAt["u"] = t0.Add(7 * time.Second)
	for _, tt := range []struct {
		at   time.Duration
		want bool
	}{
		{-time.Second, false}, {0, true}, {2 * time.Second, true}, {4 * time.Second, false},
		{6 * time.Second, true}, {7 * time.Second, false}, {9 * time.Second, false},
	} {
		if got := a.validAt("u", t0.Add(tt.at)); got != tt.want {
			t.Errorf("validAt(+%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if a.validAt("nobody", t0) {
		t.Error("a user without tokens is valid")
	}
}

func TestTallyFlush(t *testing.T) {
	tl := newTally()
	at := time.UnixMilli(12_345)
	tl.add(1, at, at.Add(time.Second), nil)
	tl.add(1, at, at.Add(time.Second), nil)
	tl.add(2, at, time.Time{}, errTest("store down"))
	tl.add(1, at.Add(500*time.Millisecond), time.Time{}, errTest("store down")) // user 1 still held a valid token
	tl.add(1, at.Add(2*time.Second), time.Time{}, errTest("store down"))        // no longer
	r := tl.flush()
	if r.Calls != 5 || r.Fails != 3 || r.Errs["store down"] != 3 {
		t.Fatalf("flush = %+v", r)
	}
	if len(r.OK) != 1 || r.OK[0] != (bucketCount{User: 1, Bucket: 123, N: 2}) {
		t.Fatalf("ok buckets = %+v", r.OK)
	}
	if len(r.Held) != 1 || r.Held[0] != (bucketCount{User: 1, Bucket: 128, N: 1}) {
		t.Fatalf("held buckets = %+v, want one failure of user 1 while its token was valid", r.Held)
	}
	c := newCollector()
	c.add(r)
	c.add(tl.flush()) // empty after the first flush
	if c.calls != 5 || c.fails != 3 || c.bad[bucketKey{2, 123}] != 1 || c.held[bucketKey{1, 128}] != 1 {
		t.Fatalf("collector = calls %d fails %d bad %v", c.calls, c.fails, c.bad)
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
