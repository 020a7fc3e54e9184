package keyscan

import "testing"

func TestEscapeMatch(t *testing.T) {
	if got, want := EscapeMatch("a*b?[c]-^\\"), `a\*b\?\[c\]\-\^\\`; got != want {
		t.Errorf("EscapeMatch = %q, want %q", got, want)
	}
	if got, want := Pattern("ns"), "ns:*"; got != want {
		t.Errorf("Pattern = %q, want %q", got, want)
	}
}
