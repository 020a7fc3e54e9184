package redisstore_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

// obsOpKey marks the context an obsRecorder hands back with the operation's
// name, so that the Redis hook can tell which operation sent a command.
type obsOpKey struct{}

// obsCall is one reported operation.
type obsCall struct {
	op  string
	err error
}

// obsRecorder is a redisstore.Observer that records what it is told.
type obsRecorder struct {
	mu    sync.Mutex // guards calls and open
	calls []obsCall
	open  int // operations started and not yet done
	twice int // done functions called more than once
}

func (o *obsRecorder) StoreOperation(ctx context.Context, op string) (context.Context, func(error)) {
	o.mu.Lock()
	o.open++
	o.mu.Unlock()
	done := false // guarded by o.mu
	return context.WithValue(ctx, obsOpKey{}, op), func(err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if done {
			o.twice++
			return
		}
		done = true
		o.open--
		o.calls = append(o.calls, obsCall{op, err})
	}
}

// take returns the operations reported since the last take.
func (o *obsRecorder) take() []obsCall {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.calls
	o.calls = nil
	return c
}

// obsHook is a go-redis hook that records, for every command, the
// operation named by its context ("" when there is none).
type obsHook struct {
	mu  sync.Mutex // guards ops
	ops []string
}

func (h *obsHook) record(ctx context.Context) {
	op, _ := ctx.Value(obsOpKey{}).(string)
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func (h *obsHook) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := h.ops
	h.ops = nil
	return ops
}

func (h *obsHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *obsHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record(ctx)
		return next(ctx, cmd)
	}
}

func (h *obsHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.record(ctx)
		return next(ctx, cmds)
	}
}

// TestObserverSeesEveryOperation calls every public method and checks that
// each is reported once, under its name, with its error, and that every
// Redis command it sends runs on the context the observer returned (which
// is how a span becomes the parent of go-redis's spans).
func TestObserverSeesEveryOperation(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	hook := &obsHook{}
	rdb.AddHook(hook)
	rec := &obsRecorder{}
	s := newStore(t, rdb, redisstore.WithObserver(rec), redisstore.WithObserver(nil)) // nil is ignored

	tok := secretToken()
	var saved tokencache.Token
	steps := []struct {
		name    string
		op      string
		call    func() error
		wantErr error // nil: success
		noRedis bool  // bad input: no command is sent
	}{
		{"insert", redisstore.OpSaveToken, func() error {
			saved = tok
			return s.SaveToken(ctx, &saved)
		}, nil, false},
		{"find by user", redisstore.OpFindToken, func() error {
			_, err := s.FindToken(ctx, tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID})
			return err
		}, nil, false},
		{"miss", redisstore.OpFindToken, func() error {
			_, err := s.FindToken(ctx, tokencache.Token{UserName: "nobody", ClientID: tok.ClientID})
			return err
		}, tokencache.ErrNotFound, false},
		{"find by ID", redisstore.OpFindTokenByID, func() error {
			_, err := s.FindTokenByID(ctx, saved.ID)
			return err
		}, nil, false},
		{"bad ID", redisstore.OpFindTokenByID, func() error {
			_, err := s.FindTokenByID(ctx, "not an id!")
			return err
		}, tokencache.ErrInvalidToken, true},
		{"update", redisstore.OpSaveToken, func() error {
			saved.AccessToken += "-2"
			return s.SaveToken(ctx, &saved)
		}, nil, false},
		{"stale version", redisstore.OpSaveToken, func() error {
			old := saved
			old.Version--
			return s.SaveToken(ctx, &old)
		}, tokencache.ErrConflict, false},
		{"save under a lock", redisstore.OpSaveTokenIfLocked, func() error {
			key := s.Namespace() + ":lock:{" + saved.ID + "}"
			if err := rdb.Set(context.Background(), key, "fence", time.Minute).Err(); err != nil {
				return err
			}
			hook.take() // the SET above is the test's, not the store's
			saved.AccessToken += "-3"
			return s.SaveTokenIfLocked(ctx, &saved, key, "fence")
		}, nil, false},
		{"save under a lost lock", redisstore.OpSaveTokenIfLocked, func() error {
			key := s.Namespace() + ":lock:{" + saved.ID + "}"
			return s.SaveTokenIfLocked(ctx, &saved, key, "someone else's")
		}, tokencache.ErrConflict, false},
		{"get tokens", redisstore.OpGetTokens, func() error {
			got, err := s.GetTokens(ctx)
			if err == nil && len(got) != 1 {
				t.Errorf("GetTokens returned %d tokens, want 1", len(got))
			}
			return err
		}, nil, false},
		{"delete token", redisstore.OpDeleteToken, func() error {
			return s.DeleteToken(ctx, saved.ID)
		}, nil, false},
		{"delete tokens", redisstore.OpDeleteTokens, func() error {
			return s.DeleteTokens(ctx)
		}, nil, false},
	}
	for _, st := range steps {
		hook.take()
		err := st.call()
		switch {
		case st.wantErr == nil && err != nil:
			t.Fatalf("%s: %v", st.name, err)
		case st.wantErr != nil && !errors.Is(err, st.wantErr):
			t.Fatalf("%s: error %v, want %v", st.name, err, st.wantErr)
		}
		calls := rec.take()
		if len(calls) != 1 || calls[0].op != st.op || !errors.Is(calls[0].err, st.wantErr) || (st.wantErr == nil) != (calls[0].err == nil) {
			t.Errorf("%s: observer saw %v, want one %s with error %v", st.name, calls, st.op, st.wantErr)
		}
		ops := hook.take()
		if st.noRedis {
			if len(ops) != 0 {
				t.Errorf("%s: %d Redis commands for bad input", st.name, len(ops))
			}
			continue
		}
		if len(ops) == 0 {
			t.Errorf("%s: no Redis command seen", st.name)
		}
		if i := slices.IndexFunc(ops, func(op string) bool { return op != st.op }); i >= 0 {
			t.Errorf("%s: command %d of %d ran with operation %q in its context, want %q", st.name, i+1, len(ops), ops[i], st.op)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.open != 0 || rec.twice != 0 {
		t.Errorf("%d operations never done, %d done twice", rec.open, rec.twice)
	}
}

// TestObserverSeesRedisFailures checks that an outage is reported as an
// error, never as a miss.
func TestObserverSeesRedisFailures(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	rec := &obsRecorder{}
	s := redisstore.New(rdb, redisstore.WithObserver(rec))
	_, err := s.FindTokenByID(ctx, "abc")
	if err == nil || errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("FindTokenByID with Redis down = %v, want an error other than not found", err)
	}
	calls := rec.take()
	if len(calls) != 1 || calls[0].op != redisstore.OpFindTokenByID || calls[0].err == nil || errors.Is(calls[0].err, tokencache.ErrNotFound) {
		t.Errorf("observer saw %v, want one failed %s", calls, redisstore.OpFindTokenByID)
	}
}
