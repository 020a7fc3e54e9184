// Package memstore is an in-memory tokencache.Store: the reference
// implementation that every other store is checked against, and a store for
// a single process or for tests.
//
// It keeps tokens in a map guarded by one mutex and finds them by scanning,
// which is plain enough to be obviously right. Tokens live as long as the
// process; a token that is no longer live (expired, no refresh token) is
// dropped the next time it is seen.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tokencache/tokencache"
)

// Store is an in-memory tokencache.Store. It is safe for concurrent use. The
// zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]entry // guarded by mu; by ID
	seq    uint64           // guarded by mu; counts saves
}

// entry is a stored token and the number of the save that wrote it.
type entry struct {
	token tokencache.Token
	seq   uint64
}

// New returns an empty Store that reads the time from time.Now.
func New() *Store {
	return NewWithClock(time.Now)
}

// NewWithClock returns an empty Store that reads the time from now, which
// decides when access tokens expire. A nil now means time.Now.
func NewWithClock(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, tokens: make(map[string]entry)}
}

var _ tokencache.Store = (*Store)(nil)

// FindToken returns the token query matches; see tokencache.Store.
func (s *Store) FindToken(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
	if err := ctx.Err(); err != nil {
		return tokencache.Token{}, err
	}
	if err := tokencache.ValidateQuery(query); err != nil {
		return tokencache.Token{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.findLocked(query, s.now()); ok {
		return t, nil
	}
	return tokencache.Token{}, fmt.Errorf("memstore: %s: %w", tokencache.RuleOf(query), tokencache.ErrNotFound)
}

// FindTokenByID returns the token with this ID; see tokencache.Store.
func (s *Store) FindTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	if err := tokencache.ValidateID(id); err != nil {
		return tokencache.Token{}, err
	}
	return s.FindToken(ctx, tokencache.Token{ID: id})
}

// SaveToken inserts or updates token; see tokencache.Store.
func (s *Store) SaveToken(ctx context.Context, token *tokencache.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.now()
	if err := tokencache.ValidateSave(token, now); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	saved := *token
	current, found := s.findLocked(*token, now)
	switch {
	case token.Version != 0 && (!found || current.Version != token.Version):
		return fmt.Errorf("memstore: saving version %d: %w", token.Version, tokencache.ErrConflict)
	case found:
		saved.ID = current.ID
		saved.Version = current.Version + 1
	default:
		if saved.ID == "" {
			saved.ID = tokencache.NewID()
		}
		saved.Version = 1
	}
	s.seq++
	s.tokens[saved.ID] = entry{token: saved, seq: s.seq}
	token.ID, token.Version = saved.ID, saved.Version
	return nil
}

// DeleteToken removes the token with this ID; see tokencache.Store.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tokencache.ValidateID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, id)
	return nil
}

// GetTokens returns every live token; see tokencache.Store.
func (s *Store) GetTokens(ctx context.Context) ([]tokencache.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]tokencache.Token, 0, len(s.tokens))
	for id, e := range s.tokens {
		if !e.token.Live(now) {
			delete(s.tokens, id)
			continue
		}
		out = append(out, e.token)
	}
	return out, nil
}

var _ tokencache.Walker = (*Store)(nil)

// walkPage is how many tokens Walk copies out per hold of the lock.
const walkPage = 256

// Walk calls fn for each live token in ID order; see tokencache.Walker. It
// copies a sorted list of the IDs once (the tokens stay in the map), then
// reads them a page at a time, so fn runs without the lock and may use the
// store. A token saved after the walk started is not visited; one deleted
// before its page is read is not either. Never twice.
func (s *Store) Walk(ctx context.Context, fn func(tokencache.Token) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	ids := make([]string, 0, len(s.tokens))
	for id := range s.tokens {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	page := make([]tokencache.Token, 0, walkPage)
	for len(ids) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(ids), walkPage)
		now := s.now()
		page = page[:0]
		s.mu.Lock()
		for _, id := range ids[:n] {
			if e, ok := s.tokens[id]; ok && e.token.Live(now) {
				page = append(page, e.token)
			}
		}
		s.mu.Unlock()
		ids = ids[n:]
		for _, t := range page {
			if err := fn(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteTokens removes every token; see tokencache.Store.
func (s *Store) DeleteTokens(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
	return nil
}

// findLocked returns the live token query matches. The caller holds s.mu.
// When several tokens hold the same value (the same refresh token saved under
// two user names, say), the most recently saved one wins, as in redisstore,
// whose index points to the last writer. It drops a token it meets that is no
// longer live.
func (s *Store) findLocked(query tokencache.Token, now time.Time) (tokencache.Token, bool) {
	if tokencache.RuleOf(query) == tokencache.RuleID {
		e, ok := s.tokens[query.ID]
		if ok && !e.token.Live(now) {
			delete(s.tokens, query.ID)
			return tokencache.Token{}, false
		}
		return e.token, ok
	}
	var best entry
	found := false
	for id, e := range s.tokens {
		if !e.token.Live(now) {
			delete(s.tokens, id)
			continue
		}
		if tokencache.Matches(query, e.token, now) && (!found || e.seq > best.seq) {
			best, found = e, true
		}
	}
	return best.token, found
}
