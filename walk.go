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
