package tokencache

import "context"

// Walker is implemented by stores that can visit every live token with
// bounded memory, for whole-store work (export, statistics) on stores too
// large for [Store.GetTokens]' slice. Find it with a type assertion:
//
//	if w, ok := store.(tokencache.Walker); ok { err = w.Walk(ctx, fn) }
type Walker interface {
	// Walk calls fn once for each live token of the store, in the store's
	// own order, holding only a page of tokens in memory at a time. An error
	// from fn stops the walk and is returned as it is. A token present for
	// the whole walk is visited exactly once; tokens saved or deleted while
	// the walk runs may or may not be visited, and never twice. (Redis's
	// SSCAN may return a member twice; redisstore's Walk drops such repeats
	// itself, with bounded memory.)
	Walk(ctx context.Context, fn func(Token) error) error
}

// WalkStore calls fn once for each live token of store and stops at fn's
// first error, which it returns as it is. It uses the store's Walk when
// store is a [Walker], holding one page of tokens at a time; any other
// store is read with [Store.GetTokens], which holds every token at once, so
// whole-store work on it (the CLI's export, list, stats and purge) needs
// memory in proportion to the store.
func WalkStore(ctx context.Context, store Store, fn func(Token) error) error {
	if w, ok := store.(Walker); ok {
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
