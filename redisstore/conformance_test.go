package redisstore_test

import (
	"context"
	"testing"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/storetest"
)

// TestConformance runs the storetest suite on miniredis, or on the real
// Redis or Cluster that redistest is pointed at.
func TestConformance(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	storetest.Run(t, func(t *testing.T) tokencache.Store {
		ns := redistest.Namespace(t)
		redistest.DropNamespaceAtCleanup(t, rdb, ns)
		s := redisstore.New(rdb, redisstore.WithNamespace(ns))
		t.Cleanup(func() { _ = s.DeleteTokens(context.Background()) })
		return s
	})
}

// TestConformanceWithoutHints runs the suite with the hint cache off, so
// that every lookup goes through the index.
func TestConformanceWithoutHints(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	storetest.Run(t, func(t *testing.T) tokencache.Store {
		ns := redistest.Namespace(t)
		redistest.DropNamespaceAtCleanup(t, rdb, ns)
		s := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithHintCacheSize(0),
			redisstore.WithIndexKey([]byte("0123456789abcdef0123456789abcdef")))
		t.Cleanup(func() { _ = s.DeleteTokens(context.Background()) })
		return s
	})
}
