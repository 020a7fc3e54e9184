package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the worker processes: the fleet
// starts os.Executable (here, this binary) with "worker" as its first
// argument.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"--workers", "3", "--duration", "2500ms", "--lifetime", "1s", "--window", "250ms", "--interval", "50ms"}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	var ok, unauth, failed, ex, ref, reuse, rej int
	if _, err := fmt.Sscanf(s[strings.Index(s, "API calls:"):], "API calls: ok=%d unauthorized=%d failed=%d", &ok, &unauth, &failed); err != nil {
		t.Fatalf("API calls line: %v", err)
	}
	if _, err := fmt.Sscanf(s[strings.Index(s, "token server:"):], "token server: exchanges=%d refreshes=%d reuses=%d rejected=%d", &ex, &ref, &reuse, &rej); err != nil {
		t.Fatalf("token server line: %v", err)
	}
	if ok == 0 || failed != 0 {
		t.Errorf("API calls: %d ok, %d failed; want some ok and none failed", ok, failed)
	}
	// One exchange of the shared grant code, and one refresh per token
	// generation (about 3 in 2.5 s of 1 s tokens renewed 250 ms early),
	// not one per worker.
	if ex != 1 || reuse != 0 || rej != 0 {
		t.Errorf("exchanges=%d reuses=%d rejected=%d, want 1, 0, 0", ex, reuse, rej)
	}
	if ref < 1 || ref > 4 {
		t.Errorf("refreshes=%d, want 1 to 4", ref)
	}
	if got := strings.Count(s, "calls ok"); got != 3 {
		t.Errorf("%d worker reports, want 3", got)
	}
}

func TestFleetRejectsBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--lifetime", "1s", "--window", "2s"}, &out); err == nil {
		t.Error("run accepted a window longer than the lifetime")
	}
}
