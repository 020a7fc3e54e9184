package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
)

func TestTraceNamesSecretsByFingerprint(t *testing.T) {
	dir := t.TempDir()
	tr, err := openTracer(filepath.Join(dir, "trace-0.log"))
	if err != nil {
		t.Fatal(err)
	}
	secret := "refresh-token-secret-value"
	tok := tokencache.Token{ID: "id1", UserName: "u1", RefreshToken: secret, AccessToken: "access-secret", Version: 3, Expiry: time.Now().Add(time.Second)}
	tr.log(tok.UserName, tok.ID, "read: %s", describe(tok))
	tr.log("other", "id2", "read: %s", describe(tokencache.Token{Version: 1}))
	tr.log("*", "", "shutdown begins")
	tr.close()
	b, err := os.ReadFile(filepath.Join(dir, "trace-0.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) || strings.Contains(string(b), "access-secret") {
		t.Fatalf("the trace holds a secret:\n%s", b)
	}
	if !strings.Contains(string(b), "rt="+fingerprint(secret)) {
		t.Errorf("the trace does not name the refresh token by its fingerprint:\n%s", b)
	}
	lines := readTraces(dir, "u1", "id1")
	if len(lines) != 2 || lines[0].user != "u1" || lines[1].user != "*" {
		t.Errorf("readTraces = %+v, want u1's line and the line about everyone", lines)
	}
}

func TestUserTimelineCollapsesRepeatedReads(t *testing.T) {
	start := time.Now()
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	lines := []traceLine{
		{at: at(30), pid: 2, text: "read: v1 rt=aa exp+1.0s"},
		{at: at(10), pid: 1, text: "read: v1 rt=aa exp+1.2s"},
		{at: at(20), pid: 1, text: "read: v1 rt=aa exp+1.1s"},
		{at: at(40), pid: 0, text: "request from pid 1 with rt=aa (active at arrival)"},
		{at: at(50), pid: -1, text: "Redis killed"},
		{at: at(60), pid: 1, text: "read: v2 rt=bb exp+3.0s"},
	}
	got := userTimeline(lines, start, start, 10)
	want := []string{
		"t+0.010s pid 1: read: v1 rt=aa exp+1.2s (×3)",
		"t+0.040s server: request from pid 1 with rt=aa (active at arrival)",
		"t+0.050s suite: Redis killed",
		"t+0.060s pid 1: read: v2 rt=bb exp+3.0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := userTimeline(lines, start, start, 2); len(got) != 3 || !strings.Contains(got[0], "2 earlier lines left out") {
		t.Errorf("limited timeline: %q", got)
	}
}
