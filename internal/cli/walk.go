package cli

import (
	"context"

	"github.com/tokencache/tokencache"
)

// WalkTokens calls fn for each live token of store, once each, and stops at
// fn's first error, which it returns as it is. It walks the store through
// tokencache.Walker when the store implements it, holding one page of
// tokens at a time, in the store's order (redisstore: Redis's; with a
// record, the record's: ID order for sqlstore). A store without Walk is
// read with GetTokens, which holds every token at once: the commands that
// use this (export, list, stats, purge) then need memory in proportion to
// the store, as before streaming.
func WalkTokens(ctx context.Context, store tokencache.Store, fn func(tokencache.Token) error) error {
	if w, ok := store.(tokencache.Walker); ok {
		return w.Walk(ctx, fn)
	}
	all, err := store.GetTokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range all {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}
