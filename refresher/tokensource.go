package refresher

import (
	"context"
	"sync"

	"golang.org/x/oauth2"

	"github.com/tokencache/tokencache"
)

// TokenSource returns an oauth2.TokenSource that serves the token query
// matches, valid, through Token, so that
//
//	client := oauth2.NewClient(ctx, r.TokenSource(ctx, query))
//
// is an *http.Client whose every request carries a valid access token,
// shared with the rest of the fleet. ctx bounds every Token call of the
// source (oauth2.TokenSource has no context of its own). After the first
// success the source looks the token up by its ID. The oauth2.Token it
// returns carries the access token, type "Bearer" and the expiry, never the
// refresh token. It is safe for concurrent use.
func (r *Refresher) TokenSource(ctx context.Context, query tokencache.Token) oauth2.TokenSource {
	return &tokenSource{r: r, ctx: ctx, query: query}
}

type tokenSource struct {
	r   *Refresher
	ctx context.Context // the caller's, held because TokenSource.Token takes none

	mu    sync.Mutex
	query tokencache.Token // guarded by mu; becomes {ID} after the first success
}

func (s *tokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	query := s.query
	s.mu.Unlock()
	t, err := s.r.Token(s.ctx, query)
	if err != nil {
		return nil, err
	}
	if query.ID != t.ID {
		s.mu.Lock()
		s.query = tokencache.Token{ID: t.ID}
		s.mu.Unlock()
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: "Bearer", Expiry: t.Expiry}, nil
}
