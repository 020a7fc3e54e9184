package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/tokencache/tokencache/oauthtest"
)

// arrival is a refresh request that reached the OAuth server.
type arrival struct {
	user string
	pid  int
	at   time.Time
}

// exchange is one token request and its answer.
type exchange struct {
	arrival
	answered time.Time
	status   int
	revoked  bool   // the user's family was revoked after it
	sent     string // fingerprint of the refresh token presented ("-" for none)
	state    string // what the server knew of it on arrival (active, retired…)
	issued   string // fingerprint of the refresh token of the answer ("-" for none)
}

// interval is when one access token was live at the server.
type interval struct{ from, to time.Time }

// authServer is the oauthtest server of one scenario, on a loopback port,
// with the hooks the scenarios time their faults by and the timeline the
// report reads.
type authServer struct {
	srv      *oauthtest.Server
	lifetime time.Duration
	hs       *http.Server
	url      string
	done     chan struct{}

	arrivals chan arrival // every arrival, dropped when nobody listens

	mu        sync.Mutex // guards every field below
	onAnswer  func(a arrival, status int)
	valid     map[string][]interval
	revokedAt map[string]time.Time
	sentAt    map[string][]time.Time // refresh arrivals per user
	history   map[string][]exchange  // every token request per user, for the timelines of lost users
	answered  map[int]time.Time      // per worker PID: its last successful refresh answer
	pending   map[int]int            // per worker PID: its token requests not yet answered
	requests  int
	refreshes int
}

func startAuth(port int, lifetime time.Duration, latMin, latMax time.Duration) (*authServer, error) {
	a := &authServer{
		lifetime:  lifetime,
		arrivals:  make(chan arrival, 1),
		valid:     map[string][]interval{},
		revokedAt: map[string]time.Time{},
		sentAt:    map[string][]time.Time{},
		history:   map[string][]exchange{},
		answered:  map[int]time.Time{},
		pending:   map[int]int{},
		done:      make(chan struct{}),
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	a.url = "http://" + ln.Addr().String()
	a.srv = oauthtest.New(
		oauthtest.WithDefaultClient(),
		oauthtest.WithRevokeOnReuse(true),
		oauthtest.WithAccessTokenLifetime(lifetime),
		oauthtest.WithBaseURL(a.url),
		oauthtest.WithLatencyFunc(func(*http.Request) time.Duration {
			return latMin + time.Duration(rand.Int64N(int64(latMax-latMin)+1))
		}),
	)
	a.hs = &http.Server{Handler: http.HandlerFunc(a.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(a.done)
		_ = a.hs.Serve(ln)
	}()
	return a, nil
}

func (a *authServer) tokenURL() string { return a.url + oauthtest.TokenPath }

func (a *authServer) close() {
	a.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.hs.Shutdown(ctx); err != nil {
		_ = a.hs.Close()
	}
	<-a.done
}

// seed issues tokens for user as an authorization would, and records them.
func (a *authServer) seed(user string) oauthtest.Tokens {
	t := a.srv.IssueTokens(oauthtest.DefaultClientID, user)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.valid[user] = append(a.valid[user], interval{time.Now(), t.Expiry})
	return t
}

// serve runs the oauthtest handler with the hooks around it: arrivals are
// published before the (delayed) handling, and onAnswer runs after the
// server decided and before the answer is written.
func (a *authServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != oauthtest.TokenPath {
		a.srv.ServeHTTP(w, r)
		return
	}
	arr := arrival{user: r.Header.Get(headerUser), at: time.Now()}
	arr.pid, _ = strconv.Atoi(r.Header.Get(headerPID))
	// The refresh token presented, for the timelines: read from a copy of
	// the body, which the handler then reads as sent.
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	sentRT := form.Get("refresh_token")
	_, sentState := a.srv.RefreshTokenState(sentRT)
	a.mu.Lock()
	a.requests++
	a.pending[arr.pid]++
	a.sentAt[arr.user] = append(a.sentAt[arr.user], arr.at)
	a.mu.Unlock()
	select {
	case a.arrivals <- arr:
	default:
	}
	rec := httptest.NewRecorder()
	a.srv.ServeHTTP(rec, r)
	now := time.Now()
	a.mu.Lock()
	if a.pending[arr.pid]--; a.pending[arr.pid] <= 0 {
		delete(a.pending, arr.pid)
	}
	switch {
	case rec.Code == http.StatusOK:
		a.refreshes++
		a.answered[arr.pid] = now
		a.valid[arr.user] = append(a.valid[arr.user], interval{now, now.Add(a.lifetime)})
	case a.srv.FamiliesRevoked(arr.user) > 0:
		if _, ok := a.revokedAt[arr.user]; !ok {
			a.revokedAt[arr.user] = now
		}
	}
	var answer struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &answer)
	a.history[arr.user] = append(a.history[arr.user], exchange{arrival: arr, answered: now, status: rec.Code,
		revoked: a.srv.FamiliesRevoked(arr.user) > 0, sent: fingerprint(sentRT), state: sentState.String(),
		issued: fingerprint(answer.RefreshToken)})
	onAnswer := a.onAnswer
	a.mu.Unlock()
	if onAnswer != nil {
		onAnswer(arr, rec.Code)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// setOnAnswer installs (nil: removes) the hook that runs after the server
// decided a request and before its answer is written.
func (a *authServer) setOnAnswer(f func(a arrival, status int)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onAnswer = f
}

// nextArrival waits for the next refresh request to arrive, at most bound.
func (a *authServer) nextArrival(ctx context.Context, bound time.Duration) (arrival, error) {
	select { // drop one that arrived before we asked
	case <-a.arrivals:
	default:
	}
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case arr := <-a.arrivals:
		return arr, nil
	case <-t.C:
		return arrival{}, errors.New("chaos: no refresh reached the server in time")
	case <-ctx.Done():
		return arrival{}, ctx.Err()
	}
}

// validAt reports whether the server held a live access token of user at t.
func (a *authServer) validAt(user string, t time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rev, ok := a.revokedAt[user]; ok && !t.Before(rev) {
		return false
	}
	for _, iv := range a.valid[user] {
		if !t.Before(iv.from) && t.Before(iv.to) {
			return true
		}
	}
	return false
}

// firstSentAfter returns the first refresh request for user at or after t.
func (a *authServer) firstSentAfter(user string, t time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.sentAt[user] {
		if !s.Before(t) {
			return s, true
		}
	}
	return time.Time{}, false
}

func (a *authServer) counts() (requests, refreshes int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests, a.refreshes
}

// timeline describes the last n token requests for user, with times
// relative to start.
func (a *authServer) timeline(user string, start time.Time, n int) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.history[user]
	if len(h) > n {
		h = h[len(h)-n:]
	}
	out := make([]string, 0, len(h))
	for _, x := range h {
		s := fmt.Sprintf("t+%.3fs pid %d sent, answered %d at t+%.3fs", x.at.Sub(start).Seconds(), x.pid, x.status, x.answered.Sub(start).Seconds())
		if x.revoked {
			s += " (family revoked)"
		}
		out = append(out, s)
	}
	return out
}

// traceOf returns the server's view of user's token requests as trace
// lines (pid 0): each arrival, with the refresh token presented and what
// the server knew of it, and each answer.
func (a *authServer) traceOf(user string) []traceLine {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []traceLine
	for _, x := range a.history[user] {
		out = append(out, traceLine{at: x.at, user: user,
			text: fmt.Sprintf("request from pid %d with rt=%s (%s at arrival)", x.pid, x.sent, x.state)})
		text := fmt.Sprintf("answered pid %d: %d, rt=%s -> rt=%s", x.pid, x.status, x.sent, x.issued)
		if x.revoked {
			text += " (family revoked)"
		}
		out = append(out, traceLine{at: x.answered, user: user, text: text})
	}
	return out
}

// lastAnswer returns when the server last answered a refresh of the worker
// pid with success (zero: never), or now while a request of pid is at the
// server: its answer may come at any moment, so pid is not quiet.
func (a *authServer) lastAnswer(pid int) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending[pid] > 0 {
		return time.Now()
	}
	return a.answered[pid]
}
