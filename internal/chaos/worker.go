package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

// WorkerEnv is the environment variable that carries a worker's
// WorkerConfig, as JSON, from the orchestrator to the worker process.
const WorkerEnv = "TOKENCACHE_CHAOS_WORKER"

// Victim modes: how a worker armed with SIGUSR1 dies (by SIGKILL, sent to
// itself at the exact point).
const (
	// VictimAfterLock dies right after it obtained a refresh lock, before
	// it wrote anything else or sent the refresh token.
	VictimAfterLock = "after-lock"
	// VictimBeforeSend dies when it calls the Endpoint, before the request
	// leaves the process.
	VictimBeforeSend = "before-send"
)

// Headers a worker puts on its token requests, so that the orchestrator's
// OAuth server knows who sent a refresh.
const (
	headerUser = "X-Chaos-User"
	headerPID  = "X-Chaos-Pid"
)

// WorkerConfig is what one worker process runs.
type WorkerConfig struct {
	RedisAddr      string        // the fault proxy in front of Redis
	Namespace      string        // redisstore and lock namespace
	TokenURL       string        // the OAuth server's token endpoint
	ClientID       string        // the users' OAuth client
	Users          []string      // user names to call Token for
	Goroutines     int           // concurrent callers
	Pause          time.Duration // mean pause between one caller's calls
	LockTTL        time.Duration // refresher.WithLockTTL
	Window         time.Duration // refresher.WithRefreshWindow
	CallTimeout    time.Duration // each Token call's deadline
	RefreshTimeout time.Duration // refresher.WithRefreshTimeout and the HTTP client's timeout
	Victim         string        // VictimAfterLock, VictimBeforeSend, or "" (none)
	Durable        string        // DSN of the durable record ("" none)
	Trace          string        // file the worker appends its trace to ("" none; see trace.go)
	ReportPeriod   time.Duration // how often the worker reports
}

// report is one line a worker writes to its stdout. Times are Unix
// milliseconds; buckets are 100 ms wide.
type report struct {
	Ready bool           `json:"ready,omitempty"`
	Calls int64          `json:"calls,omitempty"`
	Fails int64          `json:"fails,omitempty"`
	OK    []bucketCount  `json:"ok,omitempty"`   // successes per user and bucket
	Bad   []bucketCount  `json:"bad,omitempty"`  // failures per user and bucket
	Held  []bucketCount  `json:"held,omitempty"` // failures while this process had served a token still valid
	Errs  map[string]int `json:"errs,omitempty"` // failure causes, counted
	Dying *dying         `json:"dying,omitempty"`
	Final bool           `json:"final,omitempty"`
}

type bucketCount struct {
	User   int   `json:"u"`
	Bucket int64 `json:"b"` // Unix ms / 100
	N      int   `json:"n"`
}

// dying says a victim is about to SIGKILL itself.
type dying struct {
	Mode string `json:"mode"`
	User string `json:"user,omitempty"`
	ID   string `json:"id,omitempty"` // token ID, for VictimAfterLock
	T    int64  `json:"t"`
}

type bucketKey struct {
	user   int
	bucket int64
}

// tally accumulates a worker's outcomes between two reports.
type tally struct {
	mu    sync.Mutex // guards every field
	calls int64
	fails int64
	ok    map[bucketKey]int
	bad   map[bucketKey]int
	held  map[bucketKey]int
	errs  map[string]int
	last  map[int]time.Time // per user: expiry of the last token served; never reset
}

func newTally() *tally {
	return &tally{ok: map[bucketKey]int{}, bad: map[bucketKey]int{}, held: map[bucketKey]int{},
		errs: map[string]int{}, last: map[int]time.Time{}}
}

// add counts one call for user at at: a success serving a token that
// expires at expiry, or a failure err.
func (t *tally) add(user int, at time.Time, expiry time.Time, err error) {
	k := bucketKey{user, at.UnixMilli() / 100}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	if err == nil {
		t.ok[k]++
		if expiry.After(t.last[user]) {
			t.last[user] = expiry
		}
		return
	}
	t.fails++
	t.bad[k]++
	if t.last[user].After(at) {
		t.held[k]++
	}
	if len(t.errs) < 20 {
		t.errs[errClass(err)]++
	}
}

// errClass shortens an error to a stable class for counting. The library's
// errors carry no secrets; the class keeps at most 100 bytes.
func errClass(err error) string {
	s := err.Error()
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

func (t *tally) flush() report {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := report{Calls: t.calls, Fails: t.fails, Errs: t.errs}
	for k, n := range t.ok {
		r.OK = append(r.OK, bucketCount{k.user, k.bucket, n})
	}
	for k, n := range t.bad {
		r.Bad = append(r.Bad, bucketCount{k.user, k.bucket, n})
	}
	for k, n := range t.held {
		r.Held = append(r.Held, bucketCount{k.user, k.bucket, n})
	}
	t.calls, t.fails = 0, 0
	t.ok, t.bad, t.held, t.errs = map[bucketKey]int{}, map[bucketKey]int{}, map[bucketKey]int{}, map[string]int{}
	return r
}

// worker is one running worker process.
type worker struct {
	cfg   WorkerConfig
	out   io.Writer
	outMu sync.Mutex // guards out
	armed atomic.Bool
	tally *tally
}

func (w *worker) emit(r report) {
	b, _ := json.Marshal(r)
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_, _ = w.out.Write(append(b, '\n'))
}

// die reports and SIGKILLs the process.
func (w *worker) die(d dying) {
	d.T = time.Now().UnixMilli()
	w.emit(w.tally.flush())
	w.emit(report{Dying: &d})
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// RunWorker runs a worker process from the WorkerConfig in WorkerEnv until
// SIGTERM or SIGINT, writing JSON reports to out. SIGUSR1 arms the victim
// mode, if any.
func RunWorker(out io.Writer) error {
	var cfg WorkerConfig
	if err := json.Unmarshal([]byte(os.Getenv(WorkerEnv)), &cfg); err != nil {
		return fmt.Errorf("chaos worker: bad %s: %w", WorkerEnv, err)
	}
	if len(cfg.Users) == 0 || cfg.Goroutines <= 0 {
		return errors.New("chaos worker: no users or no goroutines")
	}
	w := &worker{cfg: cfg, out: out, tally: newTally()}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	arm := make(chan os.Signal, 1)
	signal.Notify(arm, syscall.SIGUSR1)

	tr, err := openTracer(cfg.Trace)
	if err != nil {
		return err
	}
	defer tr.close()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
	defer func() { _ = rdb.Close() }()
	if tr != nil {
		rdb.AddHook(lockTrace{t: tr, prefix: cfg.Namespace + ":"})
	}
	if cfg.Victim == VictimAfterLock {
		rdb.AddHook(lockHook{w: w, prefix: cfg.Namespace + ":lock:"})
	}
	store, closeStore, err := openTracedStore(context.Background(), rdb, cfg, tr)
	if err != nil {
		return err
	}
	defer closeStore()
	locker := lock.New(rdb, lock.WithNamespace(cfg.Namespace), lock.WithTTL(cfg.LockTTL))
	defer func() { _ = locker.Close() }()

	hc := &http.Client{Timeout: cfg.RefreshTimeout, Transport: headerTransport{pid: os.Getpid()}}
	var ep refresher.Endpoint = endpoint{w: w, inner: refresher.NewHTTPEndpoint(cfg.TokenURL, refresher.WithHTTPClient(hc))}
	if tr != nil {
		ep = tracedEndpoint{Endpoint: ep, t: tr}
	}
	r := refresher.New(store, locker, ep,
		refresher.WithRefreshWindow(cfg.Window),
		refresher.WithRefreshTimeout(cfg.RefreshTimeout),
		refresher.WithLockTTL(cfg.LockTTL))

	w.emit(report{Ready: true})
	var quit atomic.Bool
	calls, endCalls := context.WithCancel(context.Background()) // ends the calls in progress at stop
	defer endCalls()
	var wg sync.WaitGroup
	for g := range cfg.Goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.callLoop(calls, r, g, &quit)
		}()
	}
	tick := time.NewTicker(cfg.ReportPeriod)
	defer tick.Stop()
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-arm:
			w.armed.Store(true)
		case <-tick.C:
			w.emit(w.tally.flush())
		}
	}
	quit.Store(true)
	endCalls()
	wg.Wait()
	// Refreshes and successor saves in progress run on their own contexts:
	// Shutdown waits for them.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr.log("*", "", "shutdown begins")
	err = r.Shutdown(ctx)
	tr.log("*", "", "shutdown returned: %v", err)
	rep := w.tally.flush()
	rep.Final = true
	w.emit(rep)
	return nil
}

// callLoop is one caller: Token for a random user, a pause, again.
func (w *worker) callLoop(base context.Context, r *refresher.Refresher, g int, quit *atomic.Bool) {
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(g)))
	for !quit.Load() {
		u := rng.IntN(len(w.cfg.Users))
		ctx, cancel := context.WithTimeout(base, w.cfg.CallTimeout)
		tok, err := r.Token(ctx, tokencache.Token{UserName: w.cfg.Users[u], ClientID: w.cfg.ClientID})
		cancel()
		now := time.Now()
		if base.Err() != nil {
			return // cut short by the stop: not an outcome
		}
		if err == nil && (tok.AccessToken == "" || tok.ExpiresWithin(now, 0)) {
			err = errors.New("token served after its expiry")
		}
		w.tally.add(u, now, tok.Expiry, err)
		pause := w.cfg.Pause/2 + time.Duration(rng.Int64N(int64(w.cfg.Pause)+1))
		time.Sleep(pause)
	}
}

// endpoint marks each request with the user and dies first when armed as
// VictimBeforeSend.
type endpoint struct {
	w     *worker
	inner refresher.Endpoint
}

type userKey struct{}

func (e endpoint) Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return e.inner.Exchange(context.WithValue(ctx, userKey{}, t.UserName), t)
}

func (e endpoint) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	if e.w.cfg.Victim == VictimBeforeSend && e.w.armed.Load() {
		e.w.die(dying{Mode: VictimBeforeSend, User: t.UserName})
	}
	return e.inner.Refresh(context.WithValue(ctx, userKey{}, t.UserName), t)
}

// headerTransport adds the user and the process ID to each request.
type headerTransport struct{ pid int }

func (h headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if u, ok := req.Context().Value(userKey{}).(string); ok {
		req.Header.Set(headerUser, u)
	}
	req.Header.Set(headerPID, fmt.Sprint(h.pid))
	return http.DefaultTransport.RoundTrip(req)
}

// lockHook kills an armed VictimAfterLock worker right after one of its
// lock obtains succeeded.
type lockHook struct {
	w      *worker
	prefix string
}

func (h lockHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h lockHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h lockHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil || !h.w.armed.Load() {
			return err
		}
		// redislock's obtain script: EVAL(SHA) script 1 key value tokenLen ttl;
		// its refresh script has one argument fewer.
		args := cmd.Args()
		name := strings.ToLower(cmd.Name())
		if (name == "evalsha" || name == "eval") && len(args) == 7 {
			if key, ok := args[3].(string); ok && strings.HasPrefix(key, h.prefix) {
				id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(key, h.prefix), "{"), "}")
				h.w.die(dying{Mode: VictimAfterLock, ID: id})
			}
		}
		return err
	}
}

// openStore is the worker's store: redisstore over rdb, in front of the
// durable record when cfg.Durable names one.
func openStore(ctx context.Context, rdb redis.UniversalClient, cfg WorkerConfig) (tokencache.Store, func(), error) {
	return openTracedStore(ctx, rdb, cfg, nil)
}

// openTracedStore is openStore, traced by tr when it is not nil.
func openTracedStore(ctx context.Context, rdb redis.UniversalClient, cfg WorkerConfig, tr *tracer) (tokencache.Store, func(), error) {
	var (
		store  tokencache.Store = redisstore.New(rdb, redisstore.WithNamespace(cfg.Namespace))
		record tokencache.Store
		closer = func() {}
	)
	if cfg.Durable != "" {
		var err error
		if store, record, closer, err = openDurable(ctx, rdb, cfg.Namespace, cfg.Durable, tr); err != nil {
			return nil, nil, err
		}
	}
	if tr == nil {
		return store, closer, nil
	}
	return &tracedStore{Store: store, t: tr, rec: record}, closer, nil
}
