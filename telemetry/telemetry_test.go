package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
	"github.com/tokencache/tokencache/telemetry"
)

// marker is in every secret of these tests: none may show up in telemetry.
const marker = "S3CR3T"

const (
	clientID     = "1000.TELEMETRYCLIENT"
	clientSecret = "cs-" + marker + "-0f9e8d7c6b5a"
)

// testClock decides when tokens are due, so that expiry takes no wall time.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// tokenServer is a refresher.Endpoint that rotates refresh tokens, accepts
// each grant once, fails some refresh tokens for a transient reason, and can
// hold its answers back. Every token it issues carries the marker.
type tokenServer struct {
	clock   *testClock
	started chan struct{} // one value per call, while there is room

	mu      sync.Mutex      // guards everything below
	gate    chan struct{}   // when set, calls wait until it is closed
	n       int             // tokens issued
	live    map[string]bool // refresh tokens it accepts
	grants  map[string]bool // grant tokens not used yet
	failing map[string]bool // refresh tokens whose refresh fails with a 503
	issued  []string        // every token it handed out
}

func newTokenServer(c *testClock) *tokenServer {
	return &tokenServer{clock: c, started: make(chan struct{}, 64), live: map[string]bool{}, grants: map[string]bool{}, failing: map[string]bool{}}
}

// hold makes calls wait until the returned function is called.
func (s *tokenServer) hold() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.gate = nil
		s.mu.Unlock()
		close(gate)
	}
}

func (s *tokenServer) enter(ctx context.Context) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	select {
	case s.started <- struct{}{}:
	default:
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// issue gives t a new access and refresh token; s.mu is held.
func (s *tokenServer) issue(t tokencache.Token) tokencache.Token {
	s.n++
	t.AccessToken = fmt.Sprintf("at-%s-%04d", marker, s.n)
	t.RefreshToken = fmt.Sprintf("rt-%s-%04d", marker, s.n)
	t.Expiry = s.clock.Now().Add(time.Hour)
	s.live[t.RefreshToken] = true
	s.issued = append(s.issued, t.AccessToken, t.RefreshToken)
	return t
}

func (s *tokenServer) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	if err := s.enter(ctx); err != nil {
		return tokencache.Token{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing[t.RefreshToken] {
		return tokencache.Token{}, errors.New("token server: HTTP 503 Service Unavailable")
	}
	if !s.live[t.RefreshToken] {
		return tokencache.Token{}, fmt.Errorf("token server: HTTP 400 with error %q: %w", "invalid_grant", refresher.ErrInvalidGrant)
	}
	delete(s.live, t.RefreshToken)
	return s.issue(t), nil
}

func (s *tokenServer) Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	if err := s.enter(ctx); err != nil {
		return tokencache.Token{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.grants[t.GrantToken] {
		return tokencache.Token{}, fmt.Errorf("token server: HTTP 400 with error %q: %w", "invalid_code", refresher.ErrInvalidGrant)
	}
	delete(s.grants, t.GrantToken)
	return s.issue(t), nil
}

// worker is one process of the fleet: its own instrumented Redis client,
// store, Locker and Refresher.
type worker struct {
	rdb    redis.UniversalClient
	store  *redisstore.Store
	locker *lock.Locker
	r      *refresher.Refresher
}

// recorders are in-memory SDK providers.
type recorders struct {
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newRecorders(t *testing.T) *recorders {
	rec := &recorders{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	rec.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(rec.spans))
	rec.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(rec.reader))
	t.Cleanup(func() {
		_ = rec.tp.Shutdown(context.Background())
		_ = rec.mp.Shutdown(context.Background())
	})
	return rec
}

func (rec *recorders) metrics(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := rec.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// countSpans returns how many ended spans have this name.
func (rec *recorders) countSpans(name string) int {
	n := 0
	for _, s := range rec.spans.GetSpans() {
		if s.Name == name {
			n++
		}
	}
	return n
}

func newFleet(t *testing.T, n int, tel *telemetry.Telemetry, rec *recorders, srv *tokenServer) []*worker {
	t.Helper()
	tg := redistest.New(t).ExpireOnWallClock() // locks and cooldowns expire as in a real Redis
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, tg.Client(t), ns)
	var ws []*worker
	for range n {
		rdb := tg.Client(t)
		if err := telemetry.InstrumentRedis(rdb, telemetry.WithTracerProvider(rec.tp), telemetry.WithMeterProvider(rec.mp), telemetry.WithRedisMetrics()); err != nil {
			t.Fatal(err)
		}
		store := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithObserver(tel))
		locker := lock.New(rdb, lock.WithNamespace(ns), lock.WithPollInterval(50*time.Millisecond))
		t.Cleanup(func() { _ = locker.Close() })
		r := refresher.New(store, locker, srv, refresher.WithClock(srv.clock.Now), refresher.WithJitter(0), refresher.WithObserver(tel))
		t.Cleanup(func() { _ = r.Close() })
		ws = append(ws, &worker{rdb: rdb, store: store, locker: locker, r: r})
	}
	t.Cleanup(func() { _ = ws[0].store.DeleteTokens(context.Background()) })
	return ws
}

func userName(name string) string { return "user-" + marker + "-" + name + "@example.com" }

func userQuery(name string) tokencache.Token {
	return tokencache.Token{UserName: userName(name), ClientID: clientID}
}

// seed saves a token for the user with this refresh token, expiring at exp.
func seed(t *testing.T, w *worker, name, refreshToken string, exp time.Time) tokencache.Token {
	t.Helper()
	tok := tokencache.Token{
		UserName: userName(name), ClientID: clientID, ClientSecret: clientSecret,
		RefreshToken: refreshToken, AccessToken: "at-" + marker + "-seed-" + name, Expiry: exp,
		RedirectURL: "https://app.example.com/cb",
	}
	if err := w.store.SaveToken(context.Background(), &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTelemetry runs two workers through every result and outcome, with
// go-redis's tracing and metrics on, and checks the metrics, the spans,
// and that no secret or user name shows up anywhere in them.
func TestTelemetry(t *testing.T) {
	rec := newRecorders(t)
	tel := telemetry.New(telemetry.WithMeterProvider(rec.mp), telemetry.WithTracerProvider(rec.tp))
	clk := newTestClock()
	srv := newTokenServer(clk)
	ws := newFleet(t, 2, tel, rec, srv)
	a, b := ws[0], ws[1]
	ctx := context.Background()

	var mu sync.Mutex // guards secrets
	secrets := []string{marker, clientSecret}
	addSecrets := func(vs ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range vs {
			if v != "" {
				secrets = append(secrets, v)
			}
		}
	}
	addToken := func(tok tokencache.Token) {
		addSecrets(tok.AccessToken, tok.RefreshToken, tok.GrantToken, tok.ClientSecret, tok.UserName)
	}
	// token calls Token and fails the test (without stopping it, as it may
	// run on another goroutine) when it fails.
	token := func(w *worker, q tokencache.Token) tokencache.Token {
		t.Helper()
		tok, err := w.r.Token(ctx, q)
		if err != nil {
			t.Errorf("Token: %v", err)
		}
		addToken(tok)
		return tok
	}

	// fresh
	alice := seed(t, a, "alice", "rt-"+marker+"-seed-alice", clk.Now().Add(time.Hour))
	addToken(alice)
	srv.mu.Lock()
	srv.live[alice.RefreshToken] = true
	srv.mu.Unlock()
	token(a, userQuery("alice"))

	// stale_served, and a refresh in the background
	clk.Advance(time.Hour - 30*time.Second)
	token(a, userQuery("alice"))
	eventually(t, "the background refresh", func() bool { return rec.countSpans(telemetry.SpanRefresh) == 1 })
	eventually(t, "the renewed token", func() bool {
		got, err := a.store.FindTokenByID(ctx, alice.ID)
		return err == nil && got.AccessToken != alice.AccessToken
	})
	eventually(t, "the background refresh's lock to be released", func() bool {
		n, err := a.rdb.Exists(ctx, a.locker.Key(alice.ID)).Result()
		return err == nil && n == 0
	})

	// expired: A's first caller refreshes; A's second caller (same
	// process) and B (another worker) wait
	clk.Advance(2 * time.Hour)
	release := srv.hold()
	var wg sync.WaitGroup
	wg.Go(func() { token(a, userQuery("alice")) })
	<-srv.started
	before := rec.countSpans(telemetry.SpanStorePrefix + redisstore.OpFindTokenByID)
	wg.Go(func() { token(a, userQuery("alice")) })
	wg.Go(func() { token(b, userQuery("alice")) })
	// B's flight reads the token by ID just before it tries the lock.
	eventually(t, "B's read under its flight", func() bool {
		return rec.countSpans(telemetry.SpanStorePrefix+redisstore.OpFindTokenByID) > before
	})
	time.Sleep(200 * time.Millisecond)
	release()
	wg.Wait()

	// invalid_grant
	bob := seed(t, a, "bob", "rt-"+marker+"-dead-bob", clk.Now().Add(-time.Minute))
	addToken(bob)
	if _, err := a.r.Token(ctx, userQuery("bob")); !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Fatalf("Token with a dead refresh token = %v, want ErrInvalidGrant", err)
	}

	// a transient failure of the server
	carol := seed(t, a, "carol", "rt-"+marker+"-flaky-carol", clk.Now().Add(-time.Minute))
	addToken(carol)
	srv.mu.Lock()
	srv.failing[carol.RefreshToken] = true
	srv.mu.Unlock()
	if _, err := a.r.Token(ctx, userQuery("carol")); !errors.Is(err, refresher.ErrTemporary) {
		t.Fatalf("Token with a failing server = %v, want ErrTemporary", err)
	}

	// a grant token exchanged for the first token
	grant := "gt-" + marker + "-dave"
	addSecrets(grant, userName("dave"))
	srv.mu.Lock()
	srv.grants[grant] = true
	srv.mu.Unlock()
	dave := token(b, tokencache.Token{UserName: userName("dave"), ClientID: clientID, ClientSecret: clientSecret, GrantToken: grant})

	// nothing to find and nothing to make a token from: a miss
	if _, err := a.r.Token(ctx, userQuery("nobody")); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("Token for nobody = %v, want ErrNotFound", err)
	}
	addSecrets(userName("nobody"))

	// the rest of the store's operations (the refresher saves with a
	// revision check, not a fenced save)
	if held, err := a.locker.TryObtain(ctx, dave.ID, 0); err != nil {
		t.Fatal(err)
	} else {
		fenced := dave
		fenced.Version = 0
		err := a.store.SaveTokenIfLocked(ctx, &fenced, held.Key(), held.Token())
		_ = held.Release(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.store.GetTokens(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.store.DeleteToken(ctx, dave.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.FindTokenByID(ctx, dave.ID); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("FindTokenByID of a deleted token = %v", err)
	}
	if err := a.store.DeleteTokens(ctx); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	addSecrets(srv.issued...)
	srv.mu.Unlock()
	if t.Failed() {
		t.FailNow()
	}

	rm := rec.metrics(t)
	spans := rec.spans.GetSpans()

	t.Run("metrics", func(t *testing.T) {
		checkSum(t, rm, telemetry.MetricTokenRequests, "result", map[string]int64{
			"fresh": 1, "stale_served": 1, "refreshed": 2, "waited": 2, "error": 3,
		})
		checkSum(t, rm, telemetry.MetricRefreshes, "outcome", map[string]int64{
			"ok": 3, "invalid_grant": 1, "error": 1,
		})
		checkHistogram(t, rm, telemetry.MetricRefreshDuration, "outcome", map[string]uint64{
			"ok": 3, "invalid_grant": 1, "error": 1,
		})
		checkHistogram(t, rm, telemetry.MetricLockWait, "", map[string]uint64{"": 2})
		ops := map[string]bool{}
		outcomes := map[string]bool{}
		m, ok := findMetric(rm, telemetry.MetricStoreDuration)
		if !ok {
			t.Fatalf("no metric %s", telemetry.MetricStoreDuration)
		}
		if m.Unit != "s" {
			t.Errorf("%s has unit %q, want s", m.Name, m.Unit)
		}
		for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
			op, _ := dp.Attributes.Value("operation")
			outcome, _ := dp.Attributes.Value("outcome")
			ops[op.AsString()] = true
			outcomes[op.AsString()+"/"+outcome.AsString()] = true
		}
		for _, op := range []string{redisstore.OpFindToken, redisstore.OpFindTokenByID, redisstore.OpSaveToken,
			redisstore.OpSaveTokenIfLocked, redisstore.OpDeleteToken, redisstore.OpGetTokens, redisstore.OpDeleteTokens} {
			if !ops[op] {
				t.Errorf("%s has no data point for operation %s", m.Name, op)
			}
		}
		for _, want := range []string{"find_token/ok", "find_token/not_found", "find_token_by_id/not_found", "save_token_if_locked/ok"} {
			if !outcomes[want] {
				t.Errorf("%s has no data point for %s; has %v", m.Name, want, outcomes)
			}
		}
		for _, sm := range rm.ScopeMetrics {
			if sm.Scope.Name != telemetry.ScopeName {
				continue
			}
			for _, m := range sm.Metrics {
				if !strings.HasPrefix(m.Name, "tokencache.") {
					t.Errorf("metric %s does not start with tokencache.", m.Name)
				}
			}
		}
	})

	t.Run("spans", func(t *testing.T) {
		byName := map[string][]tracetest.SpanStub{}
		for _, s := range spans {
			byName[s.Name] = append(byName[s.Name], s)
		}
		for _, name := range []string{telemetry.SpanToken, telemetry.SpanRefresh,
			"tokencache.store.find_token", "tokencache.store.find_token_by_id", "tokencache.store.save_token",
			"tokencache.store.save_token_if_locked", "tokencache.store.delete_token",
			"tokencache.store.get_tokens", "tokencache.store.delete_tokens"} {
			if len(byName[name]) == 0 {
				t.Errorf("no span %s", name)
			}
		}
		if n := len(byName[telemetry.SpanToken]); n != 9 {
			t.Errorf("%d %s spans, want 9 (one per call)", n, telemetry.SpanToken)
		}
		if n := len(byName[telemetry.SpanRefresh]); n != 5 {
			t.Errorf("%d %s spans, want 5 (one per endpoint call)", n, telemetry.SpanRefresh)
		}
		// Status: a miss is no error; failures are.
		tokenErrors := map[codes.Code]int{}
		misses := map[string]int{}
		for _, s := range spans {
			result, outcome := attr(s.Attributes, "tokencache.result"), attr(s.Attributes, "tokencache.outcome")
			var wantError bool
			switch {
			case s.Name == telemetry.SpanToken && result == "error":
				tokenErrors[s.Status.Code]++
				continue
			case s.Name == telemetry.SpanToken:
				wantError = false
			case s.Name == telemetry.SpanRefresh, strings.HasPrefix(s.Name, telemetry.SpanStorePrefix):
				if outcome == "not_found" {
					misses[s.Name]++
				}
				wantError = outcome != "ok" && outcome != "not_found"
			default:
				continue // go-redis's
			}
			if (s.Status.Code == codes.Error) != wantError {
				t.Errorf("span %s (result %q, outcome %q) has status %v", s.Name, result, outcome, s.Status)
			}
			if s.Status.Code != codes.Error && s.Status.Description != "" {
				t.Errorf("span %s has a status message without an error: %q", s.Name, s.Status.Description)
			}
		}
		// bob's and carol's calls failed; nobody's is a miss.
		if fmt.Sprint(tokenErrors) != fmt.Sprint(map[codes.Code]int{codes.Unset: 1, codes.Error: 2}) {
			t.Errorf("failed Token calls' spans have statuses %v, want 1 unset and 2 errors", tokenErrors)
		}
		if misses["tokencache.store.find_token"] == 0 || misses["tokencache.store.find_token_by_id"] == 0 {
			t.Errorf("misses: %v, want some of find_token and find_token_by_id", misses)
		}
		// A refresh span names its token; the exchange has none yet.
		for _, s := range byName[telemetry.SpanRefresh] {
			kind, id := attr(s.Attributes, "tokencache.refresh.kind"), attr(s.Attributes, "tokencache.token.id")
			if (kind == "exchange") != (id == "") {
				t.Errorf("refresh span of kind %q has token ID %q", kind, id)
			}
		}
		// go-redis's spans exist and hang below the store's.
		ids := map[trace.SpanID]string{}
		for _, s := range spans {
			ids[s.SpanContext.SpanID()] = s.Name
		}
		redisSpans, underStore := 0, 0
		for _, s := range spans {
			if s.InstrumentationScope.Name == telemetry.ScopeName {
				continue
			}
			redisSpans++
			if strings.HasPrefix(ids[s.Parent.SpanID()], telemetry.SpanStorePrefix) {
				underStore++
			}
			if attr(s.Attributes, "db.statement") != "" {
				t.Errorf("go-redis span %s records db.statement", s.Name)
			}
		}
		if redisSpans == 0 || underStore == 0 {
			t.Errorf("%d go-redis spans, %d of them below a store span; want some of each", redisSpans, underStore)
		}
		// The refresh made for a Token call hangs below it.
		for _, s := range byName[telemetry.SpanRefresh] {
			if attr(s.Attributes, "tokencache.outcome") == "invalid_grant" && ids[s.Parent.SpanID()] != telemetry.SpanToken {
				t.Errorf("refresh span's parent is %q, want %s", ids[s.Parent.SpanID()], telemetry.SpanToken)
			}
		}
	})

	t.Run("no secrets", func(t *testing.T) {
		checkNoSecrets(t, spans, rm, secrets)
	})
}

// checkNoSecrets looks for every secret in every attribute of every span
// (its events' and links' too), in span names and status messages, and in
// every attribute of every metric data point; then, to leave no corner out,
// in the JSON of all of it.
func checkNoSecrets(t *testing.T, spans tracetest.SpanStubs, rm metricdata.ResourceMetrics, secrets []string) {
	t.Helper()
	leaks := 0
	check := func(where, value string) {
		for _, s := range secrets {
			if strings.Contains(value, s) {
				leaks++
				if leaks <= 20 {
					shown := value
					if len(shown) > 200 {
						shown = shown[:200] + "…"
					}
					t.Errorf("secret %q in %s: %q", s, where, shown)
				}
			}
		}
	}
	checkAttrs := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			check(where+" attribute "+string(kv.Key), string(kv.Key)+"="+kv.Value.String())
		}
	}
	nattrs := 0
	for _, s := range spans {
		where := "span " + s.Name
		check(where+" name", s.Name)
		check(where+" status", s.Status.Description)
		checkAttrs(where, s.Attributes)
		nattrs += len(s.Attributes)
		for _, e := range s.Events {
			check(where+" event", e.Name)
			checkAttrs(where+" event "+e.Name, e.Attributes)
		}
		for _, l := range s.Links {
			checkAttrs(where+" link", l.Attributes)
		}
		if s.Resource != nil {
			checkAttrs(where+" resource", s.Resource.Attributes())
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, set := range dataPointAttrs(t, m) {
				checkAttrs("metric "+m.Name, set.ToSlice())
				nattrs += set.Len()
			}
		}
	}
	if nattrs == 0 {
		t.Fatal("no attributes to check")
	}
	dump, err := json.Marshal(struct {
		Spans   tracetest.SpanStubs
		Metrics metricdata.ResourceMetrics
	}{spans, rm})
	if err != nil {
		t.Fatal(err)
	}
	check("the JSON of all spans and metrics", string(dump))
}

// dataPointAttrs returns the attribute sets of m's data points, and of
// their exemplars' filtered attributes.
func dataPointAttrs(t *testing.T, m metricdata.Metrics) []attribute.Set {
	var sets []attribute.Set
	add := func(set attribute.Set, filtered ...[]attribute.KeyValue) {
		sets = append(sets, set)
		for _, f := range filtered {
			sets = append(sets, attribute.NewSet(f...))
		}
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, exemplarAttrs(dp.Exemplars)...)
		}
	case metricdata.Sum[float64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, exemplarAttrs(dp.Exemplars)...)
		}
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, exemplarAttrs(dp.Exemplars)...)
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, exemplarAttrs(dp.Exemplars)...)
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, exemplarAttrs(dp.Exemplars)...)
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes, exemplarAttrs(dp.Exemplars)...)
		}
	default:
		t.Errorf("metric %s: data of type %T not checked", m.Name, m.Data)
	}
	return sets
}

func exemplarAttrs[N int64 | float64](ex []metricdata.Exemplar[N]) [][]attribute.KeyValue {
	var out [][]attribute.KeyValue
	for _, e := range ex {
		out = append(out, e.FilteredAttributes)
	}
	return out
}

func attr(kvs []attribute.KeyValue, key string) string {
	for _, kv := range kvs {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// checkSum checks an int64 counter's value for each value of key.
func checkSum(t *testing.T, rm metricdata.ResourceMetrics, name, key string, want map[string]int64) {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		t.Errorf("no metric %s", name)
		return
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok || !sum.IsMonotonic {
		t.Errorf("%s is a %T, want a monotonic int64 sum", name, m.Data)
		return
	}
	got := map[string]int64{}
	for _, dp := range sum.DataPoints {
		v, _ := dp.Attributes.Value(attribute.Key(key))
		if dp.Attributes.Len() != 1 {
			t.Errorf("%s data point has attributes %v, want only %s", name, dp.Attributes.ToSlice(), key)
		}
		got[v.AsString()] += dp.Value
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s by %s = %v, want %v", name, key, got, want)
	}
}

// checkHistogram checks a histogram's unit and its count for each value of
// key ("" for a histogram without attributes).
func checkHistogram(t *testing.T, rm metricdata.ResourceMetrics, name, key string, want map[string]uint64) {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		t.Errorf("no metric %s", name)
		return
	}
	if m.Unit != "s" {
		t.Errorf("%s has unit %q, want s", name, m.Unit)
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Errorf("%s is a %T, want a float64 histogram", name, m.Data)
		return
	}
	got := map[string]uint64{}
	for _, dp := range h.DataPoints {
		v := ""
		if key != "" {
			kv, _ := dp.Attributes.Value(attribute.Key(key))
			v = kv.AsString()
		} else if dp.Attributes.Len() != 0 {
			t.Errorf("%s data point has attributes %v, want none", name, dp.Attributes.ToSlice())
		}
		got[v] += dp.Count
		if min, ok := dp.Min.Value(); ok && min < 0 {
			t.Errorf("%s has a negative duration %v", name, min)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s by %q = %v, want %v", name, key, got, want)
	}
}

// TestDefaultsToGlobalProviders checks that New without options records
// with the global providers: nothing (and no panic) while they are the
// default no-op ones, and into an SDK once the application installs one.
func TestDefaultsToGlobalProviders(t *testing.T) {
	t.Cleanup(func() {
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
	})
	run := func(tel *telemetry.Telemetry) {
		t.Helper()
		tg := redistest.New(t)
		rdb := tg.Client(t)
		clk := newTestClock()
		srv := newTokenServer(clk)
		store := redisstore.New(rdb, redisstore.WithNamespace(redistest.Namespace(t)), redisstore.WithObserver(tel))
		t.Cleanup(func() { _ = store.DeleteTokens(context.Background()) })
		r := refresher.New(store, nil, srv, refresher.WithClock(clk.Now), refresher.WithObserver(tel))
		tok := tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "r", AccessToken: "a", Expiry: clk.Now().Add(-time.Minute)}
		if err := store.SaveToken(context.Background(), &tok); err != nil {
			t.Fatal(err)
		}
		srv.live["r"] = true
		if _, err := r.Token(context.Background(), tokencache.Token{UserName: "u", ClientID: "c"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Token(context.Background(), tokencache.Token{UserName: "nobody", ClientID: "c"}); !errors.Is(err, tokencache.ErrNotFound) {
			t.Fatal(err)
		}
	}

	// The process's global providers: no-op unless something installed
	// one, and this test puts no-op ones back when it ends.
	tel := telemetry.New()
	ctx, done := tel.StoreOperation(context.Background(), redisstore.OpFindToken)
	if trace.SpanFromContext(ctx).IsRecording() {
		t.Error("a span records with the default global provider")
	}
	done(nil)
	run(tel)

	// An SDK installed as the global provider, nil options ignored.
	rec := newRecorders(t)
	otel.SetTracerProvider(rec.tp)
	otel.SetMeterProvider(rec.mp)
	run(telemetry.New(telemetry.WithTracerProvider(nil), telemetry.WithMeterProvider(nil), nil))
	if n := rec.countSpans(telemetry.SpanToken); n != 2 {
		t.Errorf("%d %s spans in the global provider, want 2", n, telemetry.SpanToken)
	}
	rm := rec.metrics(t)
	checkSum(t, rm, telemetry.MetricTokenRequests, "result", map[string]int64{"refreshed": 1, "error": 1})
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != telemetry.ScopeName {
			t.Errorf("metrics of scope %q, want %q", sm.Scope.Name, telemetry.ScopeName)
		}
	}
}

// TestNilTelemetry checks that a nil *Telemetry is a valid observer that
// records nothing.
func TestNilTelemetry(t *testing.T) {
	var tel *telemetry.Telemetry
	ctx := context.Background()
	if got, done := tel.StoreOperation(ctx, redisstore.OpFindToken); got != ctx {
		t.Error("StoreOperation of a nil Telemetry changed the context")
	} else {
		done(errors.New("x"))
	}
	if got, done := tel.TokenCall(ctx); got != ctx {
		t.Error("TokenCall of a nil Telemetry changed the context")
	} else {
		done(refresher.ResultError, errors.New("x"))
	}
	if got, done := tel.RefreshCall(ctx, "id", false); got != ctx {
		t.Error("RefreshCall of a nil Telemetry changed the context")
	} else {
		done(refresher.OutcomeOK, nil)
	}
	tel.LockWait(ctx, time.Second)
}

// TestUnknownNames checks that operations, results and outcomes this
// package does not know yet are still recorded, under their own names.
func TestUnknownNames(t *testing.T) {
	rec := newRecorders(t)
	tel := telemetry.New(telemetry.WithMeterProvider(rec.mp), telemetry.WithTracerProvider(rec.tp))
	ctx := context.Background()
	_, done := tel.StoreOperation(ctx, "compact")
	done(nil)
	_, tdone := tel.TokenCall(ctx)
	tdone("borrowed", nil)
	_, rdone := tel.RefreshCall(ctx, "bad id!", false)
	rdone("throttled", errors.New("slow down"))
	if n := rec.countSpans("tokencache.store.compact"); n != 1 {
		t.Errorf("%d tokencache.store.compact spans, want 1", n)
	}
	for _, s := range rec.spans.GetSpans() {
		if s.Name == telemetry.SpanRefresh && attr(s.Attributes, "tokencache.token.id") != "" {
			t.Errorf("malformed token ID recorded: %v", s.Attributes)
		}
	}
	rm := rec.metrics(t)
	checkSum(t, rm, telemetry.MetricTokenRequests, "result", map[string]int64{"borrowed": 1})
	checkSum(t, rm, telemetry.MetricRefreshes, "outcome", map[string]int64{"throttled": 1})
}

func TestInstrumentRedisNil(t *testing.T) {
	if err := telemetry.InstrumentRedis(nil); err == nil {
		t.Error("InstrumentRedis(nil) = nil, want an error")
	}
}
