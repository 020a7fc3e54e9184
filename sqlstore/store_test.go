package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/sqltest"
	"github.com/tokencache/tokencache/sqlstore"
)

func bg() context.Context { return context.Background() }

// TestOpenManyAtOnce opens one new table from many goroutines at once, each
// with its own connection pool as separate processes would: every Open
// succeeds, the schema is recorded once, and the stores share the table.
func TestOpenManyAtOnce(t *testing.T) {
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			dsn, table := tg.DSN(t), sqltest.Table(t)
			const n = 8
			stores := make([]*sqlstore.Store, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					stores[i], errs[i] = sqlstore.Open(bg(), dsn, sqlstore.WithTable(table))
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					if tg.Name != "sqlite" && !sqltest.Required() && strings.Contains(err.Error(), "connecting") {
						t.Skipf("%s does not answer: %v", tg.Name, err)
					}
					t.Fatalf("Open #%d = %v", i, err)
				}
			}
			t.Cleanup(func() {
				if err := stores[0].DropTable(bg()); err != nil {
					t.Error(err)
				}
				for _, s := range stores {
					_ = s.Close()
				}
			})
			tok := tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "r"}
			if err := stores[0].SaveToken(bg(), &tok); err != nil {
				t.Fatal(err)
			}
			for i, s := range stores {
				if got, err := s.FindTokenByID(bg(), tok.ID); err != nil || got.ID != tok.ID {
					t.Errorf("store #%d: FindTokenByID = %v, %v", i, got.ID, err)
				}
			}
			db, dialect, err := sqlstore.OpenDB(bg(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			q := "SELECT COUNT(*), MAX(version) FROM " + sqlstore.SchemaTable + " WHERE table_name = ?"
			if dialect == "postgres" {
				q = strings.Replace(q, "?", "$1", 1)
			}
			var rows, version int
			if err := db.QueryRow(q, table).Scan(&rows, &version); err != nil {
				t.Fatal(err)
			}
			if rows != 1 || version < 1 {
				t.Errorf("schema table: %d rows, version %d; want one row at version >= 1", rows, version)
			}
			// Opening again changes nothing and keeps the data.
			again, err := sqlstore.Open(bg(), dsn, sqlstore.WithTable(table))
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if _, err := again.FindTokenByID(bg(), tok.ID); err != nil {
				t.Errorf("after re-opening: %v", err)
			}
		})
	}
}

// TestTwoPoolsOneIdentity saves one identity from many goroutines through
// two stores with their own connection pools (two processes): the database
// keeps one token, and every save got its own revision.
func TestTwoPoolsOneIdentity(t *testing.T) {
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			a := sqltest.Open(t, tg)
			b, err := sqlstore.Open(bg(), dsnOf(t, tg, a), sqlstore.WithTable(a.Table()))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			const n = 20
			toks := make([]tokencache.Token, 2*n)
			errs := make([]error, 2*n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range toks {
				s := a
				if i%2 == 1 {
					s = b
				}
				toks[i] = tokencache.Token{UserName: "same", ClientID: "c", RefreshToken: fmt.Sprint("r", i), AccessToken: fmt.Sprint("a", i)}
				wg.Go(func() {
					<-start
					errs[i] = s.SaveToken(bg(), &toks[i])
				})
			}
			close(start)
			wg.Wait()
			seen := map[int64]bool{}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("save #%d = %v", i, err)
				}
				if toks[i].ID != toks[0].ID {
					t.Fatalf("saves of one identity made IDs %s and %s", toks[0].ID, toks[i].ID)
				}
				if seen[toks[i].Version] {
					t.Errorf("version %d returned twice", toks[i].Version)
				}
				seen[toks[i].Version] = true
			}
			all, err := b.GetTokens(bg())
			if err != nil || len(all) != 1 || all[0].Version != 2*n {
				t.Errorf("GetTokens = %d tokens (%v), want one at version %d", len(all), err, 2*n)
			}
		})
	}
}

// dsnOf returns the DSN store s was opened on: for SQLite the file, which
// sqltest made fresh, so it is found through the test's target again.
func dsnOf(t *testing.T, tg sqltest.Target, s *sqlstore.Store) string {
	t.Helper()
	if tg.Name != "sqlite" {
		return tg.DSN(t)
	}
	return "sqlite:" + sqlstore.PathForTest(s)
}

// TestInjectionIsData saves user names and tokens that would change an SQL
// statement built by concatenation, as the Zoho SDK's DBStore does: they
// are stored and matched exactly, match nobody else, and the table is
// intact.
func TestInjectionIsData(t *testing.T) {
	payloads := []string{
		`x' OR '1'='1`, `x" OR "1"="1`, `'; DROP TABLE tokencache_tokens; --`, `\'; SELECT 1; --`,
		`%`, `_`, `*`, `x%' OR user_name LIKE '%`, "x\x00' OR 1=1", `$1`, `?`,
	}
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			s := sqltest.Open(t, tg)
			victim := tokencache.Token{UserName: "alice", ClientID: "c", RefreshToken: "alice-refresh", AccessToken: "alice-access"}
			if err := s.SaveToken(bg(), &victim); err != nil {
				t.Fatal(err)
			}
			for _, p := range payloads {
				for _, q := range []tokencache.Token{{UserName: p, ClientID: "c"}, {RefreshToken: p, ClientID: "c"}, {AccessToken: p}, {GrantToken: p, ClientID: p}} {
					if got, err := s.FindToken(bg(), q); !errors.Is(err, tokencache.ErrNotFound) {
						t.Errorf("FindToken(%s %q) before saving = %v, %v; want ErrNotFound", tokencache.RuleOf(q), p, got.ID, err)
					}
				}
				tok := tokencache.Token{UserName: p, ClientID: "c", RefreshToken: "r " + p, AccessToken: "a " + p}
				if err := s.SaveToken(bg(), &tok); err != nil {
					t.Fatalf("SaveToken(user %q) = %v", p, err)
				}
				if tok.ID == victim.ID {
					t.Fatalf("user %q updated alice's token", p)
				}
				got, err := s.FindToken(bg(), tokencache.Token{UserName: p, ClientID: "c"})
				if err != nil || got.ID != tok.ID || got.UserName != p {
					t.Errorf("FindToken(user %q) = %v %q, %v", p, got.ID, got.UserName, err)
				}
			}
			all, err := s.GetTokens(bg())
			if err != nil || len(all) != len(payloads)+1 {
				t.Errorf("GetTokens = %d tokens, %v; want %d", len(all), err, len(payloads)+1)
			}
			got, err := s.FindTokenByID(bg(), victim.ID)
			if err != nil || got != victim {
				t.Errorf("alice after the payloads: %v, %v", got, err)
			}
		})
	}
}

func TestTableNames(t *testing.T) {
	dsn := sqltest.SQLite().DSN(t)
	for _, bad := range []string{"", "a-b", "1abc", "x; DROP TABLE y", `x' OR '1'='1`, "tab le", "ü", "x`y", `x"y`,
		strings.Repeat("a", sqlstore.MaxTableNameLength+1), sqlstore.SchemaTable, strings.ToUpper(sqlstore.SchemaTable)} {
		s, err := sqlstore.Open(bg(), dsn, sqlstore.WithTable(bad))
		if !errors.Is(err, sqlstore.ErrBadOption) {
			t.Errorf("WithTable(%q): Open = %v, want ErrBadOption", bad, err)
		}
		if s != nil {
			_ = s.Close()
		}
	}
	for _, good := range []string{"Tokens_2", "_t", strings.Repeat("a", sqlstore.MaxTableNameLength), "select"} {
		s, err := sqlstore.Open(bg(), dsn, sqlstore.WithTable(good))
		if err != nil {
			t.Errorf("WithTable(%q): Open = %v", good, err)
			continue
		}
		tok := tokencache.Token{AccessToken: "a-" + good}
		if err := s.SaveToken(bg(), &tok); err != nil {
			t.Errorf("table %q: SaveToken = %v", good, err)
		}
		_ = s.Close()
	}
}

// clock is a settable clock for WithClock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *clock) now() time.Time               { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration)          { c.ns.Add(int64(d)) }
func (c *clock) at(d time.Duration) time.Time { return c.now().Add(d).Truncate(time.Millisecond) }

// TestRetentionAndCleanup checks the lifetimes redisstore gives its hashes:
// a token without a refresh token lives until its access token expires, one
// with a refresh token until the retention after the later of its Expiry
// and its save, and Cleanup deletes the rows that are gone.
func TestRetentionAndCleanup(t *testing.T) {
	c := newClock()
	s := sqltest.Open(t, sqltest.SQLite(), sqlstore.WithClock(c.now), sqlstore.WithRefreshRetention(2*time.Hour), sqlstore.WithCleanupInterval(0))
	renewable := tokencache.Token{UserName: "r", ClientID: "c", RefreshToken: "rt", AccessToken: "at", Expiry: c.at(time.Hour)}
	short := tokencache.Token{UserName: "s", ClientID: "c", AccessToken: "short", Expiry: c.at(30 * time.Minute)}
	forever := tokencache.Token{UserName: "f", ClientID: "c", RefreshToken: "ft"}
	for _, tok := range []*tokencache.Token{&renewable, &short, &forever} {
		if err := s.SaveToken(bg(), tok); err != nil {
			t.Fatal(err)
		}
	}
	live := func(tok tokencache.Token) bool {
		_, err := s.FindTokenByID(bg(), tok.ID)
		if err != nil && !errors.Is(err, tokencache.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	c.add(31 * time.Minute)
	if live(short) || !live(renewable) {
		t.Errorf("after 31m: short live %v (want false), renewable live %v (want true)", live(short), live(renewable))
	}
	if n, err := s.Cleanup(bg()); err != nil || n != 1 {
		t.Errorf("Cleanup = %d, %v; want the short token's row", n, err)
	}
	c.add(2*time.Hour + 28*time.Minute) // 2h59m: Expiry (1h) + retention (2h) not reached yet
	if !live(renewable) {
		t.Errorf("renewable gone before its Expiry plus retention")
	}
	if _, err := s.FindToken(bg(), tokencache.Token{AccessToken: "at"}); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("expired access token found: %v", err)
	}
	c.add(2 * time.Minute)
	if live(renewable) {
		t.Errorf("renewable still found after Expiry plus retention")
	}
	if all, err := s.GetTokens(bg()); err != nil || len(all) != 1 || all[0].ID != forever.ID {
		t.Errorf("GetTokens = %v, %v; want only the token without expiry", all, err)
	}
	if n, err := s.Cleanup(bg()); err != nil || n != 1 {
		t.Errorf("Cleanup = %d, %v; want the renewable token's row", n, err)
	}
	// Its identity is free again: a save makes a new token.
	again := tokencache.Token{UserName: "r", ClientID: "c", RefreshToken: "rt2"}
	if err := s.SaveToken(bg(), &again); err != nil || again.ID == renewable.ID || again.Version != 1 {
		t.Errorf("save of the expired identity: ID %s version %d, %v; want a new token", again.ID, again.Version, err)
	}
	// A save renews the retention from the time of the save.
	c.add(10 * time.Hour)
	if !live(forever) {
		t.Errorf("token without Expiry expired")
	}
}

// TestRetentionZeroKeepsRefreshTokens: WithRefreshRetention(0) keeps a token
// with a refresh token until it is deleted.
func TestRetentionZeroKeepsRefreshTokens(t *testing.T) {
	c := newClock()
	s := sqltest.Open(t, sqltest.SQLite(), sqlstore.WithClock(c.now), sqlstore.WithRefreshRetention(0))
	tok := tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "r", AccessToken: "a", Expiry: c.at(time.Minute)}
	if err := s.SaveToken(bg(), &tok); err != nil {
		t.Fatal(err)
	}
	c.add(10 * 365 * 24 * time.Hour)
	if _, err := s.FindToken(bg(), tokencache.Token{UserName: "u", ClientID: "c"}); err != nil {
		t.Errorf("after ten years with retention 0: %v", err)
	}
	if n, err := s.Cleanup(bg()); err != nil || n != 0 {
		t.Errorf("Cleanup = %d, %v; want nothing deleted", n, err)
	}
}

// TestLookupsUseIndexes checks SQLite's plan for every lookup: an index,
// never a scan of the table.
func TestLookupsUseIndexes(t *testing.T) {
	s := sqltest.Open(t, sqltest.SQLite())
	db := s.DBForTest().(*sql.DB)
	for _, rule := range []tokencache.Rule{tokencache.RuleID, tokencache.RuleUserName, tokencache.RuleGrantToken, tokencache.RuleRefreshToken, tokencache.RuleAccessToken} {
		q := s.LookupQuery(rule)
		args := []any{[]byte("k"), 1, 1}[:strings.Count(q, "?")]
		rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "; ")
		if !strings.Contains(text, "USING INDEX") && !strings.Contains(text, "USING PRIMARY KEY") {
			t.Errorf("lookup by %s: plan %q uses no index", rule, text)
		}
	}
}

// TestFailuresAreNotNotFound: with the database gone every method fails
// with an error that is not ErrNotFound and quotes no secret.
func TestFailuresAreNotNotFound(t *testing.T) {
	s := sqltest.Open(t, sqltest.SQLite())
	tok := tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "refresh-secret", AccessToken: "access-secret", ClientSecret: "client-secret"}
	if err := s.SaveToken(bg(), &tok); err != nil {
		t.Fatal(err)
	}
	closed, err := sqlstore.Open(bg(), dsnOf(t, sqltest.SQLite(), s), sqlstore.WithTable(s.Table()))
	if err != nil {
		t.Fatal(err)
	}
	_ = closed.Close()
	upd := tok
	upd.Version = 0
	checks := map[string]error{
		"FindToken by user":    second(closed.FindToken(bg(), tokencache.Token{UserName: "u", ClientID: "c"})),
		"FindToken by refresh": second(closed.FindToken(bg(), tokencache.Token{RefreshToken: "refresh-secret", ClientID: "c"})),
		"FindTokenByID":        second(closed.FindTokenByID(bg(), tok.ID)),
		"SaveToken":            closed.SaveToken(bg(), &upd),
		"SaveToken with CAS":   closed.SaveToken(bg(), &tok),
		"GetTokens":            second(closed.GetTokens(bg())),
		"DeleteToken":          closed.DeleteToken(bg(), tok.ID),
		"DeleteTokens":         closed.DeleteTokens(bg()),
	}
	for name, err := range checks {
		if err == nil || errors.Is(err, tokencache.ErrNotFound) {
			t.Errorf("%s on a closed store = %v, want an error that is not ErrNotFound", name, err)
			continue
		}
		for _, secret := range []string{"refresh-secret", "access-secret", "client-secret"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error %q quotes a secret", name, err)
			}
		}
	}
}

// TestUnreachableServer: Open of a server that does not answer fails
// quickly, without quoting the password.
func TestUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(bg(), 15*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://root:hunter2-secret@127.0.0.1:7401/test?sslmode=disable&connect_timeout=5",
		"mysql://root:hunter2-secret@127.0.0.1:7402/test",
	} {
		s, err := sqlstore.Open(ctx, dsn)
		if err == nil {
			_ = s.Close()
			t.Errorf("Open of a closed port succeeded")
			continue
		}
		if errors.Is(err, tokencache.ErrNotFound) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open error %q: quotes the password or says not found", err)
		}
	}
}

func TestDSN(t *testing.T) {
	tests := []struct {
		dsn, driver string
		want        []string // parts of the driver DSN
	}{
		{"postgres://root@127.0.0.1:5432/test?sslmode=disable", "pgx", []string{"postgres://root@127.0.0.1:5432/test?sslmode=disable"}},
		{"postgresql://u:p@db/x", "pgx", []string{"postgresql://u:p@db/x"}},
		{"mysql://root@127.0.0.1:3306/test", "mysql", []string{"root@tcp(127.0.0.1:3306)/test", "parseTime=true"}},
		{"mysql://u:p%40ss@db/x?tls=skip-verify", "mysql", []string{"u:p@ss@tcp(db:3306)/x", "tls=skip-verify", "parseTime=true"}},
		{"mariadb://u@db:3307/x", "mysql", []string{"u@tcp(db:3307)/x"}},
		{"sqlite:/tmp/t.db", "sqlite", []string{"/tmp/t.db?", "journal_mode(WAL)", "busy_timeout(", "_txlock=immediate"}},
		{"sqlite:///tmp/t.db", "sqlite", []string{"/tmp/t.db?"}},
		{"sqlite:rel/t.db", "sqlite", []string{"rel/t.db?"}},
	}
	for _, tc := range tests {
		driver, dsn, err := sqlstore.ParseDSNForTest(tc.dsn)
		if err != nil || driver != tc.driver {
			t.Errorf("%s: driver %q, %v; want %q", tc.dsn, driver, err, tc.driver)
			continue
		}
		for _, part := range tc.want {
			if !strings.Contains(dsn, part) {
				t.Errorf("%s: driver DSN %q lacks %q", tc.dsn, dsn, part)
			}
		}
	}
	for _, bad := range []string{
		"", "nothing", "redis://127.0.0.1", "postgres://u:hunter2@[::1", "mysql://u:hunter2@/db", "mysql://u:hunter2@db/",
		"mysql://u:hunter2@db/x?nosuchparam=%zz", "sqlite:", "sqlite:/tmp/a?mode=ro", "sqlite:file:x.db",
	} {
		_, _, err := sqlstore.ParseDSNForTest(bad)
		if !errors.Is(err, sqlstore.ErrBadDSN) {
			t.Errorf("%q: err %v, want ErrBadDSN", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error %q quotes the password", bad, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestWalk visits every live token once over several pages, skips dead
// ones, and stops at the callback's error.
func TestWalk(t *testing.T) {
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			s := sqltest.Open(t, tg)
			want := map[string]bool{}
			for i := range 1203 {
				tok := tokencache.Token{UserName: fmt.Sprint("walk-", i), ClientID: "c", RefreshToken: fmt.Sprint("r", i)}
				if i%100 == 7 { // dead by the time of the walk
					tok = tokencache.Token{UserName: fmt.Sprint("walk-", i), ClientID: "c", AccessToken: fmt.Sprint("a", i), Expiry: time.Now().Add(300 * time.Millisecond)}
				}
				if err := s.SaveToken(bg(), &tok); err != nil {
					t.Fatal(err)
				}
				if tok.RefreshToken != "" {
					want[tok.ID] = true
				}
			}
			time.Sleep(400 * time.Millisecond)
			seen := map[string]bool{}
			if err := s.Walk(bg(), func(tok tokencache.Token) error {
				if seen[tok.ID] || !want[tok.ID] {
					return fmt.Errorf("token %s visited twice or not live", tok.ID)
				}
				seen[tok.ID] = true
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(seen) != len(want) {
				t.Errorf("Walk visited %d tokens, want %d", len(seen), len(want))
			}
			stop := errors.New("stop")
			calls := 0
			if err := s.Walk(bg(), func(tokencache.Token) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
				t.Errorf("Walk with a failing callback = %v after %d calls", err, calls)
			}
		})
	}
}

// TestWalkWhileTokensChange saves and deletes tokens while Walk runs: the
// keyset pages never repeat a token, every token present throughout is
// visited, and a token deleted before its page is read is not.
func TestWalkWhileTokensChange(t *testing.T) {
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			s := sqltest.Open(t, tg)
			var keep, drop []string
			for i := range 1300 {
				tok := tokencache.Token{UserName: fmt.Sprint("change-", i), ClientID: "c", RefreshToken: fmt.Sprint("r", i)}
				if err := s.SaveToken(bg(), &tok); err != nil {
					t.Fatal(err)
				}
				if i%3 == 0 {
					keep = append(keep, tok.ID)
				} else {
					drop = append(drop, tok.ID)
				}
			}
			dropped := map[string]bool{}
			for _, id := range drop {
				dropped[id] = true
			}
			seen := map[string]bool{}
			deletedSeen, added := 0, 0
			err := s.Walk(bg(), func(tok tokencache.Token) error {
				if seen[tok.ID] {
					return fmt.Errorf("token %s visited twice", tok.ID)
				}
				seen[tok.ID] = true
				if dropped[tok.ID] {
					deletedSeen++
				}
				if len(seen) == 1 {
					for _, id := range drop {
						if err := s.DeleteToken(bg(), id); err != nil {
							return err
						}
					}
				}
				if added < 200 { // new tokens, some before the cursor and some after
					added++
					nt := tokencache.Token{UserName: fmt.Sprint("added-", added), ClientID: "c", RefreshToken: fmt.Sprint("ar", added)}
					if err := s.SaveToken(bg(), &nt); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range keep {
				if !seen[id] {
					t.Errorf("token %s, present throughout, not visited", id)
				}
			}
			// Only the first page was read before the delete.
			if deletedSeen > 500 {
				t.Errorf("%d deleted tokens visited, want at most one page (500)", deletedSeen)
			}
		})
	}
}
