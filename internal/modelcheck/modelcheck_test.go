package modelcheck_test

import (
	"context"
	"errors"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/modelcheck"
	"github.com/tokencache/tokencache/memstore"
)

// TestMemstoreAgainstItself runs the driver with memstore as the store
// under test: the reference must agree with itself (a check of the driver's
// bookkeeping: ID mapping, revisions, resolution).
func TestMemstoreAgainstItself(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		s := memstore.New() // one store: the instances share its memory
		st, err := modelcheck.Run(modelcheck.Config{
			Seed:  seed,
			Steps: 150,
			New: func(*modelcheck.Injector) (tokencache.Store, func()) {
				return s, func() {}
			},
		})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if st.Steps != 150 || st.Calls < 150 {
			t.Fatalf("seed %d: %s", seed, st)
		}
	}
}

// dupStore is a broken store: a save by refresh token always inserts.
type dupStore struct{ *memstore.Store }

func (s dupStore) SaveToken(ctx context.Context, t *tokencache.Token) error {
	if tokencache.RuleOf(*t) == tokencache.RuleRefreshToken && t.Version == 0 {
		c := *t
		c.ID = tokencache.NewID()
		if err := s.Store.SaveToken(ctx, &c); err != nil {
			return err
		}
		t.ID, t.Version = c.ID, c.Version
		return nil
	}
	return s.Store.SaveToken(ctx, t)
}

// TestCatchesDuplicates proves the driver notices a store that makes a
// second token for one identity.
func TestCatchesDuplicates(t *testing.T) {
	caught := 0
	for seed := uint64(1); seed <= 5; seed++ {
		s := dupStore{memstore.New()}
		_, err := modelcheck.Run(modelcheck.Config{
			Seed:  seed,
			Steps: 300,
			New:   func(*modelcheck.Injector) (tokencache.Store, func()) { return s, func() {} },
		})
		var f *modelcheck.Failure
		if errors.As(err, &f) {
			caught++
			if f.Seed != seed || f.Step < 1 || len(f.History) == 0 {
				t.Fatalf("failure without seed, step or history: %+v", f)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if caught == 0 {
		t.Fatal("no seed caught a store that inserts a duplicate on every save by refresh token")
	}
}

// injected returns a client of a fresh miniredis with inj installed, and a
// clean client to look at the server with.
func injected(t *testing.T, inj *modelcheck.Injector) (redis.UniversalClient, redis.UniversalClient) {
	t.Helper()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	modelcheck.Install(c, inj)
	plain := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = c.Close(); _ = plain.Close() })
	return c, plain
}

// TestInjectorModes checks, for a fault at the second of three commands,
// which commands reached Redis and what the caller saw.
func TestInjectorModes(t *testing.T) {
	cases := []struct {
		mode      modelcheck.Mode
		executed  []bool // SET a, SET b, SET c reached Redis
		errs      []bool // ... and failed for the caller
		cancelled bool
	}{
		{modelcheck.CancelBefore, []bool{true, false, false}, []bool{false, true, true}, true},
		{modelcheck.CancelAfter, []bool{true, true, false}, []bool{false, true, true}, true},
		{modelcheck.DropBefore, []bool{true, false, true}, []bool{false, true, false}, false},
		{modelcheck.DropAfter, []bool{true, true, true}, []bool{false, true, false}, false},
		{modelcheck.CloseAfter, []bool{true, true, true}, []bool{false, true, false}, false},
		{modelcheck.KillBefore, []bool{true, false, false}, []bool{false, true, true}, false},
		{modelcheck.KillAfter, []bool{true, true, false}, []bool{false, true, true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.mode.String(), func(t *testing.T) {
			inj := modelcheck.NewInjector()
			c, plain := injected(t, inj)
			bg := context.Background()
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			inj.Arm(2, tc.mode, cancel)
			var errs []bool
			for _, k := range []string{"a", "b", "c"} {
				errs = append(errs, c.Set(ctx, k, "1", 0).Err() != nil)
			}
			count, fired := inj.Disarm()
			if !fired || count != 3 {
				t.Fatalf("count %d fired %v, want 3 true", count, fired)
			}
			for i, k := range []string{"a", "b", "c"} {
				n, err := plain.Exists(bg, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				if got := n == 1; got != tc.executed[i] {
					t.Errorf("SET %s executed: %v, want %v", k, got, tc.executed[i])
				}
				if errs[i] != tc.errs[i] {
					t.Errorf("SET %s failed: %v, want %v", k, errs[i], tc.errs[i])
				}
			}
			if got := ctx.Err() != nil; got != tc.cancelled {
				t.Errorf("context cancelled: %v, want %v", got, tc.cancelled)
			}
			if err := c.Ping(bg).Err(); err != nil {
				t.Errorf("after Disarm: %v", err)
			}
		})
	}
}

// TestInjectorPipeline checks that a fault inside a pipeline splits it:
// before the faulting command only a prefix ran, after it all ran and the
// replies from there on are lost; a MULTI/EXEC runs whole or not at all.
func TestInjectorPipeline(t *testing.T) {
	bg := context.Background()
	for _, tc := range []struct {
		name     string
		mode     modelcheck.Mode
		tx       bool
		executed int // of four SETs
	}{
		{"before", modelcheck.DropBefore, false, 2},
		{"after", modelcheck.DropAfter, false, 4},
		{"tx-before", modelcheck.DropBefore, true, 0},
		{"tx-after", modelcheck.DropAfter, true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inj := modelcheck.NewInjector()
			c, plain := injected(t, inj)
			inj.Arm(3, tc.mode, nil)
			run := c.Pipelined
			if tc.tx {
				run = c.TxPipelined
			}
			_, err := run(bg, func(p redis.Pipeliner) error {
				for _, k := range []string{"a", "b", "c", "d"} {
					p.Set(bg, k, "1", 0)
				}
				return nil
			})
			inj.Disarm()
			if !errors.Is(err, modelcheck.ErrInjected) {
				t.Fatalf("pipeline error %v, want the injected one", err)
			}
			n, err := plain.Exists(bg, "a", "b", "c", "d").Result()
			if err != nil {
				t.Fatal(err)
			}
			if int(n) != tc.executed {
				t.Fatalf("%d commands ran, want %d", n, tc.executed)
			}
		})
	}
}
