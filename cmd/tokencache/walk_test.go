package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/root"
	"github.com/tokencache/tokencache/internal/zohofmt"
	"github.com/tokencache/tokencache/memstore"
)

// walkOnlyRecord is a durable record that can only be walked: GetTokens
// fails the test, so a command that still reads every token into one slice
// is caught. With --durable, the commands reach the record through
// redisstore's Walk.
type walkOnlyRecord struct {
	*memstore.Store
	t     *testing.T
	walks int
}

func (r *walkOnlyRecord) GetTokens(context.Context) ([]tokencache.Token, error) {
	r.t.Errorf("GetTokens called: the command must walk the store")
	return nil, errors.New("GetTokens is not allowed here")
}

func (r *walkOnlyRecord) Walk(ctx context.Context, fn func(tokencache.Token) error) error {
	r.walks++
	return r.Store.Walk(ctx, fn)
}

func (*walkOnlyRecord) Close() error { return nil }

// runWithRecord runs the CLI in this process with --durable naming rec.
func runWithRecord(t *testing.T, e *adminEnv, rec cli.Durable, stdin string, args ...string) runResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	f := cli.New(&cli.IOStreams{In: strings.NewReader(stdin), Out: &stdout, ErrOut: &stderr})
	f.OpenDurable = func(context.Context, string, *cli.Settings) (cli.Durable, error) { return rec, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = withStoreFlags(args, "--redis", e.url, "--namespace", e.ns, "--durable", "sqlite:unused")
	code := root.RunWith(ctx, f, args)
	return runResult{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// fillRecord saves n tokens of varied states into rec's store and returns
// them by ID.
func fillRecord(t *testing.T, s tokencache.Store, n int) map[string]tokencache.Token {
	t.Helper()
	now := time.Now().Truncate(time.Millisecond)
	out := make(map[string]tokencache.Token, n)
	for i := range n {
		tok := fullToken(fmt.Sprintf("user-%d@example.com", i), "1000.W", now.Add(time.Hour))
		switch i % 4 {
		case 1:
			tok.Expiry = now.Add(-time.Hour) // expired, refreshable
		case 2:
			tok.Expiry = time.Time{} // never expires
		case 3:
			tok.RefreshToken = "" // access only
		}
		if i%10 == 0 {
			tok.ID = fmt.Sprint(i + 1) // an imported Zoho ID
		}
		if err := s.SaveToken(context.Background(), &tok); err != nil {
			t.Fatal(err)
		}
		out[tok.ID] = tok
	}
	return out
}

// Export (both formats), stats, list and purge walk the store: the record
// refuses GetTokens.
func TestCommandsWalkTheStore(t *testing.T) {
	e := newAdminEnv(t)
	rec := &walkOnlyRecord{Store: memstore.New(), t: t}
	saved := fillRecord(t, rec, 40)

	// JSON lines: every token once, secrets kept.
	r := runWithRecord(t, e, rec, "", "export", "--include-secrets")
	wantCode(t, "export", r, 0)
	got := decodeLines(t, r.stdout)
	if len(got) != len(saved) {
		t.Fatalf("export wrote %d tokens, want %d", len(got), len(saved))
	}
	seen := map[string]bool{}
	for _, tok := range got {
		if seen[tok.ID] {
			t.Errorf("token %s exported twice", tok.ID)
		}
		seen[tok.ID] = true
		if want, ok := saved[tok.ID]; !ok || !sameToken(tok, want) {
			t.Errorf("exported %v\nwant %v", tok, want)
		}
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("exported %d tokens", len(saved))) {
		t.Errorf("export stderr %q", r.stderr)
	}

	// The Zoho CSV, and back in through import into another record: the
	// same tokens under the same IDs (1, 11, 21, 31 among them).
	path := filepath.Join(t.TempDir(), "back.csv")
	wantCode(t, "export zoho-csv", runWithRecord(t, e, rec, "", "export", "--format", "zoho-csv", "--include-secrets", "-o", path), 0)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	if err := zohofmt.ReadCSV(bytes.NewReader(data), func(row zohofmt.Row) error {
		rows++
		if row.Err != nil {
			return row.Err
		}
		return nil
	}); err != nil || rows != len(saved) {
		t.Fatalf("the CSV export: %d rows, %v; want %d", rows, err, len(saved))
	}
	other := newAdminEnvOn(t, e.tg)
	back := &walkOnlyRecord{Store: memstore.New(), t: t}
	wantCode(t, "import the CSV", runWithRecord(t, other, back, "", "import", "--format", "zoho-csv", path), 0)
	n := 0
	if err := back.Walk(context.Background(), func(tok tokencache.Token) error {
		n++
		if want, ok := saved[tok.ID]; !ok || !sameToken(tok, want) {
			t.Errorf("after the round trip: %v\nwant %v", tok, want)
		}
		return nil
	}); err != nil || n != len(saved) {
		t.Errorf("round trip: %d tokens, %v; want %d", n, err, len(saved))
	}
	for _, id := range []string{"1", "11", "21", "31"} {
		if _, ok := saved[id]; !ok {
			t.Errorf("no token with Zoho ID %s", id)
		}
		if _, err := back.FindTokenByID(context.Background(), id); err != nil {
			t.Errorf("Zoho ID %s after the round trip: %v", id, err)
		}
	}

	// stats counts while walking.
	r = runWithRecord(t, e, rec, "", "stats", "--json")
	wantCode(t, "stats", r, 0)
	var st statsJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Tokens != 40 || st.ExpiredRefreshable != 10 || st.NeverExpiring != 10 || st.WithoutRefreshToken != 10 {
		t.Errorf("stats = %+v, want 40 tokens, 10 expired refreshable, 10 never expiring, 10 without refresh token", st)
	}

	// list, table and JSON, sorted as before.
	r = runWithRecord(t, e, rec, "", "list", "--no-headers")
	wantCode(t, "list", r, 0)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(saved) || !slices.IsSortedFunc(lines, func(a, b string) int {
		return strings.Compare(strings.Fields(a)[1], strings.Fields(b)[1])
	}) {
		t.Errorf("list printed %d lines (sorted by user?), want %d:\n%s", len(lines), len(saved), r.stdout)
	}
	r = runWithRecord(t, e, rec, "", "list", "--json", "--user", "user-7@example.com")
	wantCode(t, "list --json", r, 0)
	var views []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &views); err != nil || len(views) != 1 || views[0]["user_name"] != "user-7@example.com" {
		t.Errorf("list --json --user: %v, %v", views, err)
	}

	// purge counts while walking, then deletes.
	r = runWithRecord(t, e, rec, "y\n", "purge")
	wantCode(t, "purge", r, 0)
	if want := fmt.Sprintf("deleted %d tokens", len(saved)); !strings.Contains(r.stdout, want) || !strings.Contains(r.stderr, fmt.Sprintf("Delete all %d tokens", len(saved))) {
		t.Errorf("purge: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	left := 0
	_ = rec.Walk(context.Background(), func(tokencache.Token) error { left++; return nil })
	if left != 0 {
		t.Errorf("purge left %d tokens in the record", left)
	}
	if rec.walks < 6 {
		t.Errorf("the record was walked %d times, want one per command", rec.walks)
	}
}

// More matching tokens than list sorts: printed as walked, each once, with
// a note; JSON stays one valid array.
func TestListStreamsManyTokens(t *testing.T) {
	e := newAdminEnv(t)
	rec := &walkOnlyRecord{Store: memstore.New(), t: t}
	const n = 5200
	for i := range n {
		tok := tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c", RefreshToken: fmt.Sprint(secretMark, i)}
		if err := rec.SaveToken(context.Background(), &tok); err != nil {
			t.Fatal(err)
		}
	}
	r := runWithRecord(t, e, rec, "", "list")
	wantCode(t, "list", r, 0)
	if got := strings.Count(r.stdout, "\n"); got != n+1 || !strings.Contains(r.stderr, "not sorted") {
		t.Errorf("list: %d lines, stderr %q; want a header and %d tokens, and a note", got, r.stderr, n)
	}
	noSecrets(t, "list", r)
	r = runWithRecord(t, e, rec, "", "list", "--json")
	wantCode(t, "list --json", r, 0)
	var views []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &views); err != nil || len(views) != n {
		t.Fatalf("list --json: %d tokens, %v; want %d", len(views), err, n)
	}
	ids := map[any]bool{}
	for _, v := range views {
		ids[v["id"]] = true
	}
	if len(ids) != n {
		t.Errorf("list --json: %d distinct IDs, want %d", len(ids), n)
	}
}

// generatedRecord walks n tokens it makes on the fly, each with 2 KiB of
// secrets, and records the largest live heap it sees during the walk.
type generatedRecord struct {
	walkOnlyRecord
	n        int
	peakLive uint64
}

func (g *generatedRecord) Walk(ctx context.Context, fn func(tokencache.Token) error) error {
	pad := strings.Repeat("x", 512)
	for i := range g.n {
		if i%2000 == 0 {
			if live := liveHeap(); live > g.peakLive {
				g.peakLive = live
			}
		}
		tok := tokencache.Token{
			ID: fmt.Sprintf("gen%07d", i), UserName: fmt.Sprint("user-", i), ClientID: "1000.G",
			ClientSecret: fmt.Sprint(pad, i), AccessToken: fmt.Sprint(pad, i, "a"), RefreshToken: fmt.Sprint(pad, i, "r"),
			GrantToken: fmt.Sprint(pad, i, "g"), Expiry: time.Now().Add(time.Hour), Version: 1,
		}
		if err := fn(tok); err != nil {
			return err
		}
	}
	return nil
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// An export holds a bounded amount of memory whatever the store's size:
// exporting 60,000 tokens of 2 KiB (120 MiB if they were held at once)
// grows the live heap by less than 16 MiB, in both formats.
func TestExportMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("exports 120 MiB of tokens")
	}
	e := newAdminEnv(t)
	for _, format := range []string{"jsonl", "zoho-csv"} {
		t.Run(format, func(t *testing.T) {
			g := &generatedRecord{walkOnlyRecord: walkOnlyRecord{Store: memstore.New(), t: t}, n: 60_000}
			path := filepath.Join(t.TempDir(), "export")
			base := liveHeap()
			r := runWithRecord(t, e, g, "", "export", "--format", format, "--include-secrets", "-o", path)
			wantCode(t, "export", r, 0)
			if !strings.Contains(r.stderr, "exported 60000 tokens") {
				t.Fatalf("export: %q", r.stderr)
			}
			growth := int64(g.peakLive) - int64(base)
			t.Logf("%s: live heap %d MiB before, at most %d MiB during the export (growth %.1f MiB)", format, base>>20, g.peakLive>>20, float64(growth)/(1<<20))
			if growth > 16<<20 {
				t.Errorf("exporting 60,000 tokens grew the live heap by %.1f MiB, want under 16 MiB", float64(growth)/(1<<20))
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Size() < 60_000*2048 {
				t.Errorf("export file: %v, %v", fi, err)
			}
		})
	}
}
