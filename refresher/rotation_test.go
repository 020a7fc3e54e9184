package refresher_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/refresher"
)

// rotatingFleet is a fleet whose endpoint is NewHTTPEndpoint against a
// local server that rotates refresh tokens and rejects a reused one.
func rotatingFleet(t *testing.T, workers int) (*fleet, *oauthtest.Server, tokencache.Token) {
	t.Helper()
	c := newClock()
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient(), oauthtest.WithClock(c.Now),
		oauthtest.WithLatency(20*time.Millisecond))
	ep := shifted{refresher.NewHTTPEndpoint(srv.TokenURL()), c}
	f := newFleet(t, workers, &fakeEndpoint{clock: c}, nil)
	// Rebuild the workers around the HTTP endpoint, on the same stores.
	f.workers = nil
	for i, store := range f.stores {
		r := refresher.New(store, f.lockers[i], ep, refresher.WithClock(c.Now))
		t.Cleanup(func() { _ = r.Close() })
		f.workers = append(f.workers, r)
	}
	issued := srv.IssueTokens(oauthtest.DefaultClientID, "u")
	tok := tokencache.Token{
		UserName: "u", ClientID: oauthtest.DefaultClientID, ClientSecret: oauthtest.DefaultClientSecret,
		RedirectURL: oauthtest.DefaultRedirectURL, AccessToken: issued.AccessToken,
		RefreshToken: issued.RefreshToken, Expiry: issued.Expiry, APIDomain: issued.APIDomain,
	}
	if err := f.stores[0].SaveToken(context.Background(), &tok); err != nil {
		t.Fatal(err)
	}
	return f, srv, tok
}

// shifted moves the expiry that the HTTP endpoint computed from the wall
// clock (x/oauth2 adds expires_in to time.Now) onto the test clock, which
// the server and the refreshers share.
type shifted struct {
	refresher.Endpoint
	clock *clock
}

func (e shifted) shift(t tokencache.Token, err error) (tokencache.Token, error) {
	if err == nil && !t.Expiry.IsZero() {
		t.Expiry = t.Expiry.Add(time.Until(e.clock.Now()))
	}
	return t, err
}

func (e shifted) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return e.shift(e.Endpoint.Refresh(ctx, t))
}

func (e shifted) Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return e.shift(e.Endpoint.Exchange(ctx, t))
}

func TestStampedeWithRotatingServer(t *testing.T) {
	f, srv, _ := rotatingFleet(t, 8)
	query := tokencache.Token{UserName: "u", ClientID: oauthtest.DefaultClientID}
	const rounds = 10
	for round := int64(1); round <= rounds; round++ {
		f.clock.Advance(2 * time.Hour)
		toks, errs := f.callAll(context.Background(), 50, query)
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, tok := range toks {
			if tok.AccessToken != toks[0].AccessToken {
				t.Fatalf("round %d: callers got different access tokens", round)
			}
		}
		st := srv.Stats()
		if st.Refreshes != round || st.InvalidGrants != 0 || st.Reuses != 0 {
			t.Fatalf("round %d: server saw %d refreshes, %d invalid_grant, %d reuses; want %d, 0, 0",
				round, st.Refreshes, st.InvalidGrants, st.Reuses, round)
		}
	}
}

// TestTokenSourceCarriesAValidToken runs on the wall clock: oauth2.NewClient
// caches tokens by time.Now. Tokens live one second, so requests spread over
// 2.5 s cross two expiries.
func TestTokenSourceCarriesAValidToken(t *testing.T) {
	// 2 s tokens renewed 800 ms ahead: a call made with a token just short of
	// its window still reaches the server in time on a loaded machine.
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient(), oauthtest.WithAccessTokenLifetime(2*time.Second))
	f := newFleet(t, 2, newEndpoint(newClock()), nil)
	query := tokencache.Token{UserName: "u", ClientID: oauthtest.DefaultClientID}
	ep := refresher.NewHTTPEndpoint(srv.TokenURL())
	for i, store := range f.stores {
		r := refresher.New(store, f.lockers[i], ep, refresher.WithRefreshWindow(800*time.Millisecond), refresher.WithJitter(0))
		t.Cleanup(func() { _ = r.Close() })
		f.workers[i] = r
	}
	issued := srv.IssueTokens(oauthtest.DefaultClientID, "u")
	seeded := tokencache.Token{
		UserName: "u", ClientID: oauthtest.DefaultClientID, ClientSecret: oauthtest.DefaultClientSecret,
		AccessToken: issued.AccessToken, RefreshToken: issued.RefreshToken, Expiry: issued.Expiry,
	}
	if err := f.stores[0].SaveToken(context.Background(), &seeded); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	clients := []*http.Client{
		oauth2.NewClient(ctx, f.workers[0].TokenSource(ctx, query)),
		oauth2.NewClient(ctx, f.workers[1].TokenSource(ctx, tokencache.Token{ID: seeded.ID})),
	}
	start := time.Now()
	calls := 0
	for time.Since(start) < 4*time.Second {
		for i, client := range clients {
			resp, err := client.Get(srv.URL() + oauthtest.WhoAmIPath)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			calls++
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("client %d, call %d at %v: status %d", i, calls, time.Since(start).Round(time.Millisecond), resp.StatusCode)
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	st := srv.Stats()
	if st.Unauthorized != 0 || st.APICalls != int64(calls) || st.Refreshes < 2 || st.Refreshes > 4 || st.InvalidGrants != 0 {
		t.Errorf("server stats %+v after %d calls over 4 s of 2 s tokens renewed 0.8 s early; want every call authorized, 2 to 4 refreshes, no invalid_grant", st, calls)
	}
	tok, err := f.workers[1].TokenSource(ctx, tokencache.Token{ID: seeded.ID}).Token()
	if err != nil || tok.RefreshToken != "" || tok.Type() != "Bearer" || tok.AccessToken == "" {
		t.Errorf("TokenSource token: type %q, carries the refresh token %v, err %v", tok.Type(), tok.RefreshToken != "", err)
	}
}
