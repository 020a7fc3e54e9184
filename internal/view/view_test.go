package view

import (
	"testing"
	"time"
)

func TestExpiryAndCell(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		exp  time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now.Add(42 * time.Second), "2026-01-02T03:04:47Z (in 42s)"},
		{now.Add(3*time.Minute + 10*time.Second), "2026-01-02T03:07:15Z (in 3m)"},
		{now.Add(-5*time.Hour - 7*time.Minute), "2026-01-01T21:57:05Z (expired 5h07m ago)"},
		{now.Add(72 * time.Hour), "2026-01-05T03:04:05Z (in 3d)"},
	} {
		if got := Expiry(c.exp, now); got != c.want {
			t.Errorf("Expiry(%v) = %q, want %q", c.exp, got, c.want)
		}
	}
	for in, want := range map[string]string{"": "-", "alice": "alice", "a\tb": `"a\tb"`, "\x1b[31mred": `"\x1b[31mred"`, "Zoë": "Zoë", "bad\xff": `"bad\xff"`} {
		if got := Cell(in); got != want {
			t.Errorf("Cell(%q) = %q, want %q", in, got, want)
		}
	}
}
