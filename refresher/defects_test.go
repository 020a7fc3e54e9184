package refresher_test

// Tests of defects found by probes (issue 9, point 4). Each failed on the
// code before its fix.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

// A token imported with refresh token r0 is renewed by ID in a worker (r0
// is rotated away); a query that still presents r0 in that worker must get
// the renewed token, not send r0 again (a reuse, which a rotating server
// answers by revoking the whole family).
func TestOldRefreshTokenQueryAfterRenewalByID(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 2, ep, nil)
	seeded := f.seed(t)
	f.clock.Advance(2 * time.Hour)
	renewed, err := f.workers[1].Token(context.Background(), tokencache.Token{ID: seeded.ID})
	if err != nil || renewed.AccessToken != "a1" {
		t.Fatalf("renewal by ID: %q, %v", renewed.AccessToken, err)
	}
	old := tokencache.Token{RefreshToken: "r0", ClientID: "c", ClientSecret: "s"}
	for i, w := range f.workers {
		tok, err := w.Token(context.Background(), old)
		if err != nil || tok.ID != seeded.ID || tok.AccessToken != "a1" {
			t.Errorf("worker %d, query with the rotated refresh token: %s %q, %v; want token %s with a1", i, tok.ID, tok.AccessToken, err, seeded.ID)
		}
	}
	if ep.refresh.Load() != 1 || ep.reuses.Load() != 0 {
		t.Errorf("refreshes %d, reuses %d; want 1, 0", ep.refresh.Load(), ep.reuses.Load())
	}
}

// A query with refresh token r0 makes token X in one worker; much later
// (after the ten minutes the fleet used to remember that) X is renewed by
// ID in another, and a query with r0 there must still find X.
func TestOldRefreshTokenQueryAfterTenMinutes(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 2, ep, nil)
	if f.target.Mini == nil {
		t.Skip("needs miniredis to move Redis's TTLs forward")
	}
	query := tokencache.Token{RefreshToken: "r0", ClientID: "c", ClientSecret: "s"}
	made, err := f.workers[0].Token(context.Background(), query)
	if err != nil || made.AccessToken != "a1" {
		t.Fatalf("first query: %q, %v", made.AccessToken, err)
	}
	f.target.Mini.FastForward(11 * time.Minute)
	f.clock.Advance(2 * time.Hour)
	if tok, err := f.workers[1].Token(context.Background(), tokencache.Token{ID: made.ID}); err != nil || tok.AccessToken != "a2" {
		t.Fatalf("renewal by ID: %q, %v", tok.AccessToken, err)
	}
	tok, err := f.workers[1].Token(context.Background(), query)
	if err != nil || tok.ID != made.ID || tok.AccessToken != "a2" {
		t.Errorf("query with r0 eleven minutes later: %s %q, %v; want token %s with a2", tok.ID, tok.AccessToken, err, made.ID)
	}
	if ep.refresh.Load() != 2 || ep.reuses.Load() != 0 {
		t.Errorf("refreshes %d, reuses %d; want 2, 0", ep.refresh.Load(), ep.reuses.Load())
	}
}

// Without a Locker, a renewal in the background (the token inside its
// window) and one in the foreground (the token expired meanwhile) of the
// same token must not both reach the server.
func TestWithoutLockerBackgroundAndForegroundRenewOnce(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	ep.started = make(chan struct{}, 1)
	tg := redistest.New(t)
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, tg.Client(t), ns)
	store := redisstore.New(tg.Client(t), redisstore.WithNamespace(ns))
	t.Cleanup(func() { _ = store.DeleteTokens(context.Background()) })
	f := &fleet{ep: ep, clock: ep.clock, stores: []*redisstore.Store{store}}
	f.seed(t)
	r := refresher.New(store, nil, ep, refresher.WithClock(ep.clock.Now))

	f.clock.Advance(time.Hour - 30*time.Second) // inside the window
	if tok, err := r.Token(context.Background(), userQuery); err != nil || tok.AccessToken != "a0" {
		t.Fatalf("inside the window: %q, %v", tok.AccessToken, err)
	}
	select {
	case <-ep.started: // the background renewal is at the server
	case <-time.After(5 * time.Second):
		t.Fatal("no background renewal started")
	}
	f.clock.Advance(time.Minute) // expired: a caller now needs a renewal
	got := make(chan error, 1)
	go func() {
		tok, err := r.Token(context.Background(), userQuery)
		if err == nil && tok.AccessToken != "a1" {
			err = fmt.Errorf("got %q, want a1", tok.AccessToken)
		}
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	calls := ep.refresh.Load()
	close(ep.block)
	if err := <-got; err != nil {
		t.Errorf("foreground caller: %v", err)
	}
	if calls != 1 || ep.refresh.Load() != 1 || ep.reuses.Load() != 0 {
		t.Errorf("the server got %d refreshes while the background one was in flight (%d in all, %d reuses); want 1", calls, ep.refresh.Load(), ep.reuses.Load())
	}
}

// A grant code exchanged for an access token without a refresh token is
// spent: once that access token expires, the code must not be sent again.
func TestUsedGrantCodeIsNotExchangedAgain(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.noRT = true
	ep.grants["g1"] = true
	f := newFleet(t, 2, ep, nil)
	query := tokencache.Token{GrantToken: "g1", ClientID: "c", ClientSecret: "s", RedirectURL: "https://app/cb"}
	tok, err := f.workers[0].Token(context.Background(), query)
	if err != nil || tok.AccessToken != "xa1" || tok.RefreshToken != "" {
		t.Fatalf("exchange: %q (refresh token %q), %v", tok.AccessToken, tok.RefreshToken, err)
	}
	f.clock.Advance(2 * time.Hour)
	for i, w := range f.workers {
		for _, q := range []tokencache.Token{query, {ID: tok.ID}} {
			got, err := w.Token(context.Background(), q)
			if err == nil {
				t.Errorf("worker %d, %s after the access token expired: %q, want an error", i, tokencache.RuleOf(q), got.AccessToken)
			} else if !errors.Is(err, refresher.ErrInvalidGrant) || errors.Is(err, refresher.ErrTemporary) {
				t.Errorf("worker %d, %s after the access token expired: %v, want ErrInvalidGrant (the user must authorize again)", i, tokencache.RuleOf(q), err)
			}
		}
	}
	if n := ep.exchange.Load(); n != 1 {
		t.Errorf("the grant code was exchanged %d times, want 1", n)
	}
}

// WithLocalCache must not serve an access-only token past its expiry.
func TestLocalCacheDropsExpiredAccessOnlyToken(t *testing.T) {
	ep := newEndpoint(newClock())
	tg := redistest.New(t)
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, tg.Client(t), ns)
	store := redisstore.New(tg.Client(t), redisstore.WithNamespace(ns))
	t.Cleanup(func() { _ = store.DeleteTokens(context.Background()) })
	r := refresher.New(store, nil, ep, refresher.WithClock(ep.clock.Now), refresher.WithLocalCache(time.Hour))
	seeded := tokencache.Token{AccessToken: "only-access", Expiry: ep.clock.Now().Add(time.Hour)}
	if err := store.SaveToken(context.Background(), &seeded); err != nil {
		t.Fatal(err)
	}
	query := tokencache.Token{AccessToken: "only-access"}
	if tok, err := r.Token(context.Background(), query); err != nil || tok.AccessToken != "only-access" {
		t.Fatalf("first call: %q, %v", tok.AccessToken, err)
	}
	ep.clock.Advance(2 * time.Hour)
	tok, err := r.Token(context.Background(), query)
	if err == nil && tok.ExpiresWithin(ep.clock.Now(), 0) {
		t.Errorf("served an access-only token that expired %v ago", ep.clock.Now().Sub(tok.Expiry))
	}
	if err != nil && !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("expired access-only token: %v, want ErrNotFound", err)
	}
}

// hangingDialer dials Redis until hang is set; then new connections hang
// (for up to 3 s, as an unreachable host's connect does) and fail.
type hangingDialer struct {
	hang atomic.Bool
	d    net.Dialer
}

func (h *hangingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if h.hang.Load() {
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
		return nil, fmt.Errorf("dial %s: connection hangs", addr)
	}
	return h.d.DialContext(ctx, network, addr)
}

// When new connections to Redis hang (the pool's old ones still work), the
// renewals of different tokens must not queue behind the Locker's attempt
// to subscribe.
func TestHangingSubscriptionDoesNotQueueRenewals(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	if tg.Kind == redistest.Cluster {
		t.Skip("the dial hook is for a standalone server")
	}
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, tg.Client(t), ns)
	opts := tg.Client(t).(*redis.Client).Options()
	hd := &hangingDialer{}
	o := *opts
	o.Dialer, o.PoolSize = hd.dial, 64
	rdb := redis.NewClient(&o)
	t.Cleanup(func() { _ = rdb.Close() })
	// Open 32 connections at once, then give them back to the pool, idle.
	var conns []*redis.Conn
	for range 32 {
		c := rdb.Conn()
		if err := c.Ping(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	store := redisstore.New(rdb, redisstore.WithNamespace(ns))
	ep := newEndpoint(newClock())
	const users = 4
	for i := range users {
		tok := tokencache.Token{UserName: fmt.Sprint("user", i), ClientID: "c", ClientSecret: "s", RefreshToken: fmt.Sprint("r0-", i), AccessToken: "a0",
			Expiry: ep.clock.Now().Add(time.Hour)}
		if err := store.SaveToken(context.Background(), &tok); err != nil {
			t.Fatal(err)
		}
	}
	locker := lock.New(rdb, lock.WithNamespace(ns))
	t.Cleanup(func() { _ = locker.Close() })
	r := refresher.New(store, locker, &anyRefresh{ep}, refresher.WithClock(ep.clock.Now))
	hd.hang.Store(true)
	ep.clock.Advance(2 * time.Hour)

	start := time.Now()
	took := make([]time.Duration, users)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := r.Token(ctx, tokencache.Token{UserName: fmt.Sprint("user", i), ClientID: "c"})
			took[i] = time.Since(start)
			if err != nil {
				t.Errorf("user%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	t.Logf("renewals finished after %v", took)
	for i, d := range took {
		if d > 2500*time.Millisecond {
			t.Errorf("the renewal of user%d finished after %v; renewals of %d tokens took %v", i, d.Round(time.Millisecond), users, took)
			break
		}
	}
}

// anyRefresh is an endpoint that renews any refresh token.
type anyRefresh struct{ *fakeEndpoint }

func (e *anyRefresh) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	n := e.refresh.Add(1)
	t.AccessToken, t.RefreshToken, t.Expiry = fmt.Sprint("a", n), fmt.Sprint("r", n), e.clock.Now().Add(time.Hour)
	return t, nil
}

// The server refusing the client's credentials (a configuration error,
// which is fixed) must not mark the user's token dead.
func TestInvalidClientDoesNotKillTheToken(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.fail = func(call int64) (error, bool) {
		return fmt.Errorf("fake server: invalid_client: %w: %w", refresher.ErrInvalidGrant, refresher.ErrInvalidClient), call == 1
	}
	const cooldown = 200 * time.Millisecond
	f := newFleet(t, 2, ep, nil, refresher.WithCooldown(cooldown))
	f.seed(t)
	f.clock.Advance(2 * time.Hour)
	_, errs := f.callAll(context.Background(), 5, userQuery)
	for i, err := range errs {
		if !errors.Is(err, refresher.ErrInvalidClient) || !errors.Is(err, refresher.ErrInvalidGrant) {
			t.Fatalf("caller %d while the client is refused: %v, want ErrInvalidClient and ErrInvalidGrant", i, err)
		}
	}
	if n := ep.refresh.Load(); n != 1 {
		t.Errorf("the refused client was retried at once: %d calls", n)
	}
	time.Sleep(cooldown + 100*time.Millisecond) // the configuration is fixed meanwhile
	for i, w := range f.workers {
		tok, err := w.Token(context.Background(), userQuery)
		if err != nil || tok.AccessToken != "a2" {
			t.Errorf("worker %d after the cooldown: %q, %v; want the renewed a2", i, tok.AccessToken, err)
		}
	}
}

// An error names the package once: not "refresher: token X: refresher:
// refresh: invalid grant".
func TestErrorsNameThePackageOnce(t *testing.T) {
	f, srv, seeded := rotatingFleet(t, 1)
	f.clock.Advance(2 * time.Hour)
	srv.FailNext(1, 503)
	_, err := f.workers[0].Token(context.Background(), tokencache.Token{ID: seeded.ID})
	if !errors.Is(err, refresher.ErrTemporary) {
		t.Fatalf("Token with the server failing = %v, want ErrTemporary", err)
	}
	if n := strings.Count(err.Error(), "refresher: "); n != 1 {
		t.Errorf("the message names the package %d times: %q", n, err)
	}

	f, _, seeded = rotatingFleet(t, 1)
	seeded.RefreshToken, seeded.Expiry = "rt-never-issued-0001", f.clock.Now().Add(-time.Minute)
	if err := f.stores[0].SaveToken(context.Background(), &seeded); err != nil {
		t.Fatal(err)
	}
	_, err = f.workers[0].Token(context.Background(), tokencache.Token{ID: seeded.ID})
	if !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Fatalf("Token with an unknown refresh token = %v, want ErrInvalidGrant", err)
	}
	if n := strings.Count(err.Error(), "refresher: "); n != 1 {
		t.Errorf("the message names the package %d times: %q", n, err)
	}
}
