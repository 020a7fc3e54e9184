package sqlstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/sqltest"
	"github.com/tokencache/tokencache/sqlstore"
)

// TestFlightsOneHolder: of many holders beginning a flight for one token
// at once, through two connection pools, exactly one gets it; the others
// see its mark.
func TestFlightsOneHolder(t *testing.T) {
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			a := sqltest.Open(t, tg)
			b, err := sqlstore.Open(bg(), dsnOf(t, tg, a), sqlstore.WithTable(a.Table()))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			const n = 16
			oks := make([]bool, n)
			curs := make([]tokencache.Flight, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				s := a
				if i%2 == 1 {
					s = b
				}
				wg.Go(func() {
					<-start
					oks[i], curs[i], errs[i] = s.BeginFlight(bg(), "tok1", 7, fmt.Sprint("holder-", i), time.Minute)
				})
			}
			close(start)
			wg.Wait()
			winner := ""
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("BeginFlight #%d = %v", i, errs[i])
				}
				if oks[i] {
					if winner != "" {
						t.Fatalf("two holders got the flight: %s and holder-%d", winner, i)
					}
					winner = fmt.Sprint("holder-", i)
				}
			}
			if winner == "" {
				t.Fatal("nobody got the flight")
			}
			for i := range n {
				if !oks[i] && (curs[i].Holder != winner || curs[i].Version != 7) {
					t.Errorf("loser #%d saw mark %+v, want the winner %s at version 7", i, curs[i], winner)
				}
			}
			cur, found, err := b.CurrentFlight(bg(), "tok1")
			if err != nil || !found || cur.Holder != winner {
				t.Errorf("CurrentFlight = %+v, %v, %v; want %s", cur, found, err, winner)
			}
		})
	}
}

// TestFlightLifecycle: re-begin by the same holder, extend, end, expiry,
// and that another holder takes over only once the mark has ended.
func TestFlightLifecycle(t *testing.T) {
	c := newClock()
	s := sqltest.Open(t, sqltest.SQLite(), sqlstore.WithClock(c.now))
	ok, _, err := s.BeginFlight(bg(), "t", 3, "h1", 10*time.Second)
	if err != nil || !ok {
		t.Fatalf("BeginFlight = %v, %v", ok, err)
	}
	if ok, cur, _ := s.BeginFlight(bg(), "t", 3, "h2", 10*time.Second); ok || cur.Holder != "h1" {
		t.Errorf("second holder: ok %v, mark %+v; want refused with h1's mark", ok, cur)
	}
	if ok, _, _ := s.BeginFlight(bg(), "t", 3, "h1", 10*time.Second); !ok {
		t.Errorf("the same holder again: refused")
	}
	if ok, _, _ := s.BeginFlight(bg(), "t", 2, "h2", 10*time.Second); ok {
		t.Errorf("another holder took a live mark with an earlier revision")
	}
	c.add(8 * time.Second)
	if ok, err := s.ExtendFlight(bg(), "t", "h1", 10*time.Second); err != nil || !ok {
		t.Errorf("ExtendFlight = %v, %v", ok, err)
	}
	if ok, _ := s.ExtendFlight(bg(), "t", "h2", 10*time.Second); ok {
		t.Errorf("another holder extended h1's mark")
	}
	c.add(8 * time.Second) // 16 s: alive thanks to the extension
	if ok, _, _ := s.BeginFlight(bg(), "t", 3, "h2", 10*time.Second); ok {
		t.Errorf("h2 took over an extended mark")
	}
	if err := s.EndFlight(bg(), "t", "h2"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.CurrentFlight(bg(), "t"); !found {
		t.Errorf("EndFlight by another holder removed h1's mark")
	}
	c.add(3 * time.Second) // past h1's extended end
	if _, found, _ := s.CurrentFlight(bg(), "t"); found {
		t.Errorf("an expired mark is still current")
	}
	if ok, err := s.ExtendFlight(bg(), "t", "h1", time.Second); ok || err != nil {
		t.Errorf("ExtendFlight of an expired mark = %v, %v; want false", ok, err)
	}
	if ok, _, err := s.BeginFlight(bg(), "t", 4, "h2", 10*time.Second); err != nil || !ok {
		t.Errorf("h2 after the mark expired: %v, %v", ok, err)
	}
	// A live mark of an earlier revision (its answer saved, the mark not
	// ended) does not stop the next revision's refresh.
	if ok, _, err := s.BeginFlight(bg(), "t", 5, "h3", 10*time.Second); err != nil || !ok {
		t.Errorf("h3 on revision 5 over h2's live mark of revision 4: %v, %v", ok, err)
	}
	if err := s.EndFlight(bg(), "t", "h3"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.CurrentFlight(bg(), "t"); found {
		t.Errorf("mark still there after EndFlight")
	}
	for _, bad := range []func() error{
		func() error { _, _, err := s.BeginFlight(bg(), "a b", 1, "h", time.Second); return err },
		func() error { _, _, err := s.BeginFlight(bg(), "t", 1, "", time.Second); return err },
		func() error { _, _, err := s.BeginFlight(bg(), "t", 1, "h", 0); return err },
		func() error { _, err := s.ExtendFlight(bg(), "t", "h", -time.Second); return err },
		func() error { return s.EndFlight(bg(), "", "h") },
		func() error { _, _, err := s.CurrentFlight(bg(), "x/y"); return err },
	} {
		if err := bad(); !errors.Is(err, tokencache.ErrInvalidToken) {
			t.Errorf("bad input: %v, want ErrInvalidToken", err)
		}
	}
}

// TestMigrationFromVersion1: a table created by the first migration only
// gets the flights table when a newer build opens it, and keeps its tokens.
func TestMigrationFromVersion1(t *testing.T) {
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			s := sqltest.Open(t, tg)
			tok := tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "r"}
			if err := s.SaveToken(bg(), &tok); err != nil {
				t.Fatal(err)
			}
			db, dialect, err := sqlstore.OpenDB(bg(), dsnOf(t, tg, s))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			flights, _ := sqlstore.QuoteIdentifier(dialect, s.Table()+"_flights")
			q := "UPDATE " + sqlstore.SchemaTable + " SET version = 1 WHERE table_name = ?"
			if dialect == "postgres" {
				q = "UPDATE " + sqlstore.SchemaTable + " SET version = 1 WHERE table_name = $1"
			}
			if _, err := db.Exec("DROP TABLE " + flights); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(q, s.Table()); err != nil {
				t.Fatal(err)
			}
			again, err := sqlstore.Open(bg(), dsnOf(t, tg, s), sqlstore.WithTable(s.Table()))
			if err != nil {
				t.Fatalf("Open of a version-1 table = %v", err)
			}
			defer again.Close()
			if ok, _, err := again.BeginFlight(bg(), tok.ID, tok.Version, "h", time.Minute); err != nil || !ok {
				t.Errorf("BeginFlight after the migration = %v, %v", ok, err)
			}
			if got, err := again.FindTokenByID(bg(), tok.ID); err != nil || got.RefreshToken != "r" {
				t.Errorf("token after the migration: %v, %v", got, err)
			}
		})
	}
}

// TestFlightRefusedForSpentRevision: a holder that read revision N before
// another holder saved N+1 and ended its mark (the lock lost in between: a
// restarted Redis, a paused holder) cannot begin a flight for N: its
// refresh token is already spent. It gets an ended mark of the stored
// revision and sends nothing.
func TestFlightRefusedForSpentRevision(t *testing.T) {
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			s := sqltest.Open(t, tg)
			tok := tokencache.Token{UserName: "spent@example.com", ClientID: "c", RefreshToken: "r1", AccessToken: "a1", Expiry: time.Now().Add(time.Hour)}
			if err := s.SaveToken(bg(), &tok); err != nil {
				t.Fatal(err)
			}
			read := tok.Version // what the late holder read
			ok, _, err := s.BeginFlight(bg(), tok.ID, read, "early", time.Minute)
			if err != nil || !ok {
				t.Fatalf("early BeginFlight = %v, %v", ok, err)
			}
			tok.RefreshToken, tok.AccessToken = "r2", "a2"
			if err := s.SaveToken(bg(), &tok); err != nil { // the early holder's answer lands
				t.Fatal(err)
			}
			if err := s.EndFlight(bg(), tok.ID, "early"); err != nil {
				t.Fatal(err)
			}
			ok, cur, err := s.BeginFlight(bg(), tok.ID, read, "late", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				t.Fatalf("late BeginFlight for spent revision %d succeeded; the record holds %d", read, tok.Version)
			}
			if cur.Version != tok.Version || cur.Until.After(time.Now()) {
				t.Fatalf("refusal mark = %+v, want version %d ended", cur, tok.Version)
			}
			ok, _, err = s.BeginFlight(bg(), tok.ID, tok.Version, "late", time.Minute)
			if err != nil || !ok {
				t.Fatalf("BeginFlight for the stored revision = %v, %v; want ok", ok, err)
			}
		})
	}
}
