package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

// changes records what a ChangeWatcher reports.
type changes struct{ ch chan string }

func (c changes) Changed(id string) { c.ch <- "changed " + id }
func (c changes) ChangedAll()       { c.ch <- "all" }
func (c changes) Watching(ok bool) {
	if ok {
		c.ch <- "watching"
	} else {
		c.ch <- "not watching"
	}
}

func (c changes) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-c.ch:
		if got != want {
			t.Fatalf("report %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no report within 5 s, want %q", want)
	}
}

func (c changes) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-c.ch:
		t.Fatalf("report %q, want none", got)
	case <-time.After(100 * time.Millisecond):
	}
}

// Every save and delete through any Store of the namespace is reported to
// every watcher, after it committed; a save that changed nothing is not.
func TestWatchChangesReportsSavesAndDeletes(t *testing.T) {
	tg := redistest.New(t)
	ns := redistest.Namespace(t)
	rdbA, rdbB := tg.Client(t), tg.Client(t)
	redistest.DropNamespaceAtCleanup(t, rdbA, ns)
	writer := redisstore.New(rdbA, redisstore.WithNamespace(ns)) // another process
	watched := redisstore.New(rdbB, redisstore.WithNamespace(ns))
	c := changes{make(chan string, 100)}
	stop := watched.WatchChanges(c)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	c.expect(t, "watching")
	ctx := context.Background()

	tok := tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a1", RefreshToken: "r1", Expiry: time.Now().Add(time.Hour)}
	if err := writer.SaveToken(ctx, &tok); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "changed "+tok.ID)
	// Read from the store when the report arrives, the token is the new one.
	tok.AccessToken = "a2"
	if err := writer.SaveToken(ctx, &tok); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "changed "+tok.ID)
	if got, err := watched.FindTokenByID(ctx, tok.ID); err != nil || got.AccessToken != "a2" {
		t.Fatalf("after the report: %q, %v; want a2", got.AccessToken, err)
	}

	stale := tok
	stale.Version = 1
	if err := writer.SaveToken(ctx, &stale); !errors.Is(err, tokencache.ErrConflict) {
		t.Fatalf("stale save = %v, want ErrConflict", err)
	}
	if err := writer.SaveToken(ctx, &tokencache.Token{UserName: "nothing to store"}); !errors.Is(err, tokencache.ErrInvalidToken) {
		t.Fatalf("invalid save = %v, want ErrInvalidToken", err)
	}
	c.none(t)

	if err := writer.DeleteToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "changed "+tok.ID)
	if err := writer.DeleteTokens(ctx); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "all")

	// Another namespace's changes are not reported.
	other := redisstore.New(rdbA, redisstore.WithNamespace(ns+"-other"))
	redistest.DropNamespaceAtCleanup(t, rdbA, ns+"-other")
	o := tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "x"}
	if err := other.SaveToken(ctx, &o); err != nil {
		t.Fatal(err)
	}
	c.none(t)
}

func TestWatchChangesStopReportsNotWatching(t *testing.T) {
	tg := redistest.New(t)
	s := redisstore.New(tg.Client(t), redisstore.WithNamespace(redistest.Namespace(t)))
	c := changes{make(chan string, 10)}
	stop := s.WatchChanges(c)
	c.expect(t, "watching")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "not watching")
	if err := stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}
