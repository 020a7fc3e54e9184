package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/faultproxy"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

// Config is the fleet and the machinery of a chaos run. DefaultConfig
// holds the fleet of issue 9.
type Config struct {
	Bin         string // this program, run with "worker" for each worker process
	RedisServer string // the redis-server binary
	PortFrom    int    // the loopback ports the run may use, inclusive
	PortTo      int

	Workers        int           // worker processes
	Goroutines     int           // callers per worker
	Users          int           // users, one token each
	Lifetime       time.Duration // access token lifetime at the OAuth server
	Window         time.Duration // refresher.WithRefreshWindow
	LockTTL        time.Duration // refresher.WithLockTTL
	CallTimeout    time.Duration // each Token call's deadline
	RefreshTimeout time.Duration // refresher.WithRefreshTimeout (bounds the in-flight record too)
	Pause          time.Duration // mean pause between one caller's calls
	LatencyMin     time.Duration // OAuth server latency, uniform in [min, max]
	LatencyMax     time.Duration
	Warmup         time.Duration // before the faults
	Settle         time.Duration // after the faults, before the fleet stops

	Short bool      // the CI version of each scenario
	Log   io.Writer // progress lines; nil: none
}

// DefaultConfig is the fleet of issue 9: 4 processes × 16 goroutines, 30
// users, 3 s access tokens, a 1 s refresh window, a 10 s lock TTL, OAuth
// latency 100–300 ms.
func DefaultConfig() Config {
	return Config{
		PortFrom: 7600, PortTo: 7699,
		Workers: 4, Goroutines: 16, Users: 30,
		Lifetime: 3 * time.Second, Window: time.Second, LockTTL: 10 * time.Second,
		CallTimeout: 5 * time.Second, RefreshTimeout: refresher.DefaultRefreshTimeout, Pause: 100 * time.Millisecond,
		LatencyMin: 100 * time.Millisecond, LatencyMax: 300 * time.Millisecond,
		Warmup: 4 * time.Second, Settle: 12 * time.Second,
	}
}

// env is one scenario while it runs.
type env struct {
	ctx    context.Context
	cfg    Config
	scn    Scenario
	tmp    string
	redis  *redisProc
	proxy  *faultproxy.Proxy
	auth   *authServer
	fleet  *fleet
	victim *proc
	ids    map[string]string // token ID -> user
	start  time.Time         // when the scenario started, for timelines

	cache  tokencache.Store      // Redis alone (no record), for the snapshots of the traces
	record tokencache.Store      // the durable record, nil without one
	direct redis.UniversalClient // Redis itself, not through the proxy

	mu        sync.Mutex  // guards ends, takeovers, missed, journal, marks and faultAt
	journal   []string    // the faults injected, with times relative to start
	marks     []traceLine // the faults and snapshots, for the traces of lost users
	faultAt   time.Time   // the first fault
	ends      []time.Time
	takeovers []time.Duration
	missed    int // takeovers that did not happen within their bound
}

func (e *env) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.mu.Lock()
	e.journal = append(e.journal, fmt.Sprintf("t+%.3fs %s", time.Since(e.start).Seconds(), msg))
	e.marks = append(e.marks, traceLine{at: time.Now(), pid: -1, user: "*", text: msg})
	e.mu.Unlock()
	if e.cfg.Log != nil {
		fmt.Fprintf(e.cfg.Log, "  %s %s: %s\n", time.Now().Format("15:04:05.000"), e.scn.Name, msg)
	}
}

// sleep waits d or until the run is cancelled.
func (e *env) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-e.ctx.Done():
		return e.ctx.Err()
	}
}

// pause waits d between two faults of a scenario; the CI version, which
// injects one fault of each kind, leaves the quiet time to the settle
// phase.
func (e *env) pause(d time.Duration) error {
	if e.cfg.Short {
		return nil
	}
	return e.sleep(d)
}

// faultEnded records the end of one fault, from which recovery is timed.
func (e *env) faultEnded(at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ends = append(e.ends, at)
}

func (e *env) lastDeath() (dying, bool) {
	c := e.fleet.col
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.deaths) == 0 {
		return dying{}, false
	}
	return c.deaths[len(c.deaths)-1], true
}

// awaitTakeover waits, at most bound, for a refresh of user to reach the
// server after since, and records how long that took.
func (e *env) awaitTakeover(user string, since time.Time, bound time.Duration) {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		if at, ok := e.auth.firstSentAfter(user, since); ok {
			e.mu.Lock()
			e.takeovers = append(e.takeovers, at.Sub(since))
			e.mu.Unlock()
			e.logf("takeover of %s after %v", user, at.Sub(since).Round(time.Millisecond))
			return
		}
		if e.sleep(50*time.Millisecond) != nil {
			return
		}
	}
	e.mu.Lock()
	e.missed++
	e.mu.Unlock()
}

// idOf returns the token ID of user.
func (e *env) idOf(user string) string {
	for id, u := range e.ids {
		if u == user {
			return id
		}
	}
	return ""
}

// traceLimit bounds the lines of one lost user's trace.
const traceLimit = 250

// trace merges what the workers, the server and the suite traced about
// user, from 3 s before the first fault (or 5 s before the first request
// with a refresh token that was not active, if earlier) on.
func (e *env) trace(user string) []string {
	id := e.idOf(user)
	lines := readTraces(e.tmp, user, id)
	server := e.auth.traceOf(user)
	lines = append(lines, server...)
	e.mu.Lock()
	from := e.faultAt.Add(-3 * time.Second)
	for _, m := range e.marks {
		if m.user == "*" || m.user == user || m.id == id {
			lines = append(lines, m)
		}
	}
	e.mu.Unlock()
	for _, l := range server {
		if strings.Contains(l.text, "at arrival") && !strings.Contains(l.text, "(active at arrival)") {
			if b := l.at.Add(-5 * time.Second); b.Before(from) {
				from = b
			}
			break
		}
	}
	return userTimeline(lines, from, e.start, traceLimit)
}

// snapshot records, for every user's token, what Redis holds (the copy,
// the lock, the in-flight record) and, with a record, what the record
// holds, as lines of the traces.
func (e *env) snapshot(label string, withRecord bool) {
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	var marks []traceLine
	for id, u := range e.ids {
		tok, err := e.cache.FindTokenByID(ctx, id)
		text := fmt.Sprintf("%s: Redis has %s", label, outcome(tok, err))
		for _, k := range []string{"lock", "flight"} {
			key := fmt.Sprintf("chaos:%s:{%s}", k, id)
			if ttl, err := e.direct.PTTL(ctx, key).Result(); err == nil && ttl > 0 {
				v, _ := e.direct.Get(ctx, key).Result()
				if k == "flight" {
					rev, holder, _ := strings.Cut(v, " ")
					v = "v" + rev + " by " + fingerprint(holder)
				} else {
					v = "by " + fingerprint(v)
				}
				text += fmt.Sprintf(", %s %s for %v", k, v, ttl)
			}
		}
		if withRecord && e.record != nil {
			rt, err := e.record.FindTokenByID(ctx, id)
			text += "; the record has " + outcome(rt, err)
		}
		marks = append(marks, traceLine{at: time.Now(), pid: -1, user: u, id: id, text: text})
	}
	e.mu.Lock()
	e.marks = append(e.marks, marks...)
	e.mu.Unlock()
}

// Result is what one scenario measured.
type Result struct {
	Scenario    Scenario
	Skipped     string // why it did not run, if it did not
	Err         error  // the run broke (not a gate failure)
	Users       int
	Lost        int
	LostWhy     map[string]int // reason -> users
	Timelines   []string       // for a few lost users: their last token requests, then the faults
	Traces      []string       // for a few lost users: everything the fleet, the server and the suite traced about them
	Calls       int64
	Failed      int64
	FailedValid int64 // while the server held a live access token of the user
	FailedHeld  int64 // while the failing process had served a token of the user that had not expired
	Requests    int   // refresh requests at the server
	Refreshes   int   // successful refreshes
	Faults      int
	Recovery    time.Duration // worst recovery over the faults
	Unrecovered int           // users with no successful call after some fault
	Takeover    time.Duration // worst takeover of a killed holder's user
	Takeovers   int
	Missed      int
	Errs        map[string]int
	Elapsed     time.Duration
}

// Ratio is refresh requests per successful refresh (1.0 when nobody sent a
// refresh token twice); 0 without refreshes.
func (r Result) Ratio() float64 {
	if r.Refreshes == 0 {
		return 0
	}
	return float64(r.Requests) / float64(r.Refreshes)
}

// Run runs one scenario and measures it. Everything it started is stopped
// and removed before it returns.
func Run(ctx context.Context, cfg Config, scn Scenario) (res Result) {
	res = Result{Scenario: scn, Users: cfg.Users, LostWhy: map[string]int{}}
	if scn.Durable && !durableAvailable {
		res.Skipped = "needs sqlstore and redisstore.WithDurableStore (not in this build)"
		return res
	}
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	e := &env{ctx: ctx, cfg: cfg, scn: scn, ids: map[string]string{}, start: start}
	var err error
	if e.tmp, err = os.MkdirTemp("", "tokencache-chaos-"); err != nil {
		res.Err = err
		return res
	}
	defer func() { _ = os.RemoveAll(e.tmp) }()

	taken := map[int]bool{}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(cfg.PortFrom, cfg.PortTo, taken); err != nil {
			res.Err = err
			return res
		}
	}
	if e.redis, err = startRedis(cfg.RedisServer, ports[0], e.tmp, scn.Persist); err != nil {
		res.Err = err
		return res
	}
	defer e.redis.kill()
	if e.proxy, err = faultproxy.Start(fmt.Sprintf("127.0.0.1:%d", ports[1]), e.redis.addr()); err != nil {
		res.Err = err
		return res
	}
	defer func() { _ = e.proxy.Close() }()
	if e.auth, err = startAuth(ports[2], cfg.Lifetime, cfg.LatencyMin, cfg.LatencyMax); err != nil {
		res.Err = err
		return res
	}
	defer e.auth.close()

	ns := "chaos"
	base := WorkerConfig{
		RedisAddr: e.proxy.Addr(), Namespace: ns, TokenURL: e.auth.tokenURL(),
		ClientID: oauthtest.DefaultClientID, Goroutines: cfg.Goroutines, Pause: cfg.Pause,
		LockTTL: cfg.LockTTL, Window: cfg.Window, CallTimeout: cfg.CallTimeout, RefreshTimeout: cfg.RefreshTimeout,
		ReportPeriod: 250 * time.Millisecond,
	}
	if scn.Durable {
		base.Durable = "sqlite:" + filepath.Join(e.tmp, "record.db")
	}
	users := make([]string, cfg.Users)
	for i := range users {
		users[i] = fmt.Sprintf("user%02d@chaos.test", i)
	}
	base.Users = users

	// Seed through Redis directly (not the proxy), with the expiries spread
	// so that the users do not all come due at once.
	direct := redis.NewClient(&redis.Options{Addr: e.redis.addr()})
	defer func() { _ = direct.Close() }()
	e.direct = direct
	e.cache = redisstore.New(direct, redisstore.WithNamespace(ns))
	var (
		store      tokencache.Store
		closeStore func()
	)
	if base.Durable != "" {
		store, e.record, closeStore, err = openDurable(ctx, direct, ns, base.Durable, nil)
	} else {
		store, closeStore, err = openStore(ctx, direct, base)
	}
	if err != nil {
		res.Err = err
		return res
	}
	defer closeStore()
	for _, u := range users {
		t := e.auth.seed(u)
		tok := tokencache.Token{
			UserName: u, ClientID: oauthtest.DefaultClientID, ClientSecret: oauthtest.DefaultClientSecret,
			RedirectURL: oauthtest.DefaultRedirectURL, AccessToken: t.AccessToken, RefreshToken: t.RefreshToken,
			APIDomain: t.APIDomain,
			Expiry:    time.Now().Add(cfg.Window + 200*time.Millisecond + time.Duration(rand.Int64N(int64(cfg.Lifetime-cfg.Window)))),
		}
		if tok.Expiry.After(t.Expiry) {
			tok.Expiry = t.Expiry
		}
		if err := store.SaveToken(ctx, &tok); err != nil {
			res.Err = fmt.Errorf("chaos: seed: %w", err)
			return res
		}
		e.ids[tok.ID] = u
	}

	e.fleet = &fleet{bin: cfg.Bin, dir: e.tmp, base: base, col: newCollector()}
	defer e.fleet.stop(15 * time.Second)
	for i := range cfg.Workers {
		victim := ""
		if i == 0 {
			victim = scn.Victim
		}
		p, err := e.fleet.start(victim)
		if err != nil {
			res.Err = err
			return res
		}
		if i == 0 {
			e.victim = p
		}
	}
	e.logf("fleet up: %d workers × %d callers, %d users", cfg.Workers, cfg.Goroutines, cfg.Users)
	if err := e.sleep(cfg.Warmup); err != nil {
		res.Err = err
		return res
	}
	faultStart := time.Now()
	e.mu.Lock()
	e.faultAt = faultStart
	e.mu.Unlock()
	if err := scn.fault(e, cfg.Short); err != nil {
		res.Err = err
	}
	e.logf("faults done after %v; settling %v", time.Since(faultStart).Round(time.Millisecond), cfg.Settle)
	if err := e.sleep(cfg.Settle); err != nil && res.Err == nil {
		res.Err = err
	}
	e.logf("stopping the fleet")
	e.fleet.stop(15 * time.Second)
	_ = e.proxy.Clear()

	e.evaluate(&res, store, users)
	return res
}

// evaluate fills res from the server, the store and the workers' reports.
func (e *env) evaluate(res *Result, store tokencache.Store, users []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lost := map[int]bool{}
	for i, u := range users {
		why := ""
		// With a durable record the record decides what the next refresh
		// sends (a rolled-back Redis copy may be older).
		find := store.FindToken
		if rf, ok := store.(tokencache.RecordFinder); ok {
			find = rf.FindTokenFromRecord
		}
		tok, err := find(ctx, tokencache.Token{UserName: u, ClientID: oauthtest.DefaultClientID})
		switch {
		case errors.Is(err, tokencache.ErrNotFound):
			why = "no token in the store"
		case err != nil:
			why = "store error"
		default:
			if _, st := e.auth.srv.RefreshTokenState(tok.RefreshToken); st != oauthtest.RefreshActive {
				why = "store holds a " + st.String() + " refresh token"
			}
		}
		if why == "" && e.auth.srv.FamiliesRevoked(u) > 0 {
			why = "family revoked"
		}
		if why != "" {
			lost[i] = true
			res.LostWhy[why]++
			if len(res.Timelines) < 2 {
				res.Timelines = append(res.Timelines, fmt.Sprintf("%s (%s): %s", u, why,
					strings.Join(e.auth.timeline(u, e.start, 6), "; ")))
			}
			if len(res.Traces) < 2 {
				res.Traces = append(res.Traces, fmt.Sprintf("trace of %s (token %s; %s):\n    %s", u, e.idOf(u), why,
					strings.Join(e.trace(u), "\n    ")))
			}
		}
	}
	res.Lost = len(lost)
	res.Requests, res.Refreshes = e.auth.counts()

	col := e.fleet.col
	col.mu.Lock()
	defer col.mu.Unlock()
	res.Calls, res.Failed, res.Errs = col.calls, col.fails, col.errs
	for _, n := range col.held {
		res.FailedHeld += int64(n)
	}
	for k, n := range col.bad {
		if e.auth.validAt(users[k.user], time.UnixMilli(k.bucket*100+50)) {
			res.FailedValid += int64(n)
		}
	}
	// Recovery: for each fault end, until every user not lost had a
	// successful call again.
	firstOK := func(user int, from int64) (int64, bool) {
		best, found := int64(0), false
		for k := range col.ok {
			if k.user == user && k.bucket >= from && (!found || k.bucket < best) {
				best, found = k.bucket, true
			}
		}
		return best, found
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	res.Faults = len(e.ends)
	unrecovered := map[int]bool{}
	for _, end := range e.ends {
		from := end.UnixMilli() / 100
		for i := range users {
			if lost[i] {
				continue
			}
			b, ok := firstOK(i, from)
			if !ok {
				unrecovered[i] = true
				continue
			}
			if d := time.Duration(b-from) * 100 * time.Millisecond; d > res.Recovery {
				res.Recovery = d
			}
		}
	}
	res.Unrecovered = len(unrecovered)
	for _, d := range e.takeovers {
		res.Takeover = max(res.Takeover, d)
	}
	res.Takeovers, res.Missed = len(e.takeovers), e.missed
	if len(res.Timelines) > 0 {
		res.Timelines = append(res.Timelines, "faults: "+strings.Join(e.journal, "; "))
	}
}
