package tokencache

import "context"

// Walker is implemented by stores that can visit every live token with
// bounded memory, for whole-store work (export, statistics) on stores too
// large for [Store.GetTokens]' slice. Find it with a type assertion:
//
//	if w, ok := store.(tokencache.Walker); ok { err = w.Walk(ctx, fn) }
type Walker interface {
	// Walk calls fn once for each live token of the store, in no particular
	// order, holding only a page of tokens in memory at a time. An error
	// from fn stops the walk and is returned as it is. Tokens saved or
	// deleted while the walk runs may or may not be visited; a token may be
	// visited twice when the store reorganises itself during the walk (as
	// Redis's SSCAN may), so a caller that must not see duplicates keys its
	// output by ID.
	Walk(ctx context.Context, fn func(Token) error) error
}
