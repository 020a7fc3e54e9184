package refresher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
)

// acquire makes the first token for a query that matched nothing.
func (r *Refresher) acquire(ctx context.Context, query tokencache.Token) (tokencache.Token, Result, error) {
	switch {
	case query.GrantToken != "" || query.RefreshToken != "":
		pid := pseudoID(query)
		return r.share(ctx, pid, func(ctx context.Context, fl *flight) (tokencache.Token, error) {
			return r.acquireOnce(ctx, pid, query, fl)
		})
	case tokencache.RuleOf(query) == tokencache.RuleAccessToken:
		t := query
		if err := r.store.SaveToken(ctx, &t); err != nil {
			return tokencache.Token{}, ResultError, storeErr(ctx, err)
		}
		return t, ResultFresh, nil
	default:
		return tokencache.Token{}, ResultError, errorf("refresher: %s matches no token and has no grant or refresh token to make one: %w",
			tokencache.RuleOf(query), tokencache.ErrNotFound)
	}
}

// pseudoID names what the fleet knows about a query's grant or refresh
// token (its lock while it is exchanged, its note afterwards): a digest of
// the secret and the client, never the secret itself.
func pseudoID(query tokencache.Token) string {
	secret := "refresh\x00" + query.RefreshToken
	if query.GrantToken != "" {
		secret = "grant\x00" + query.GrantToken
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s\x00", len(query.ClientID), query.ClientID)
	h.Write([]byte(secret))
	return "q" + hex.EncodeToString(h.Sum(nil)[:16])
}

// acquireOnce exchanges or refreshes the query's secret under the lock of
// its pseudo-ID, once across the fleet: grant codes are single-use and a
// rotating server accepts a refresh token once. Whoever comes later finds
// the saved token, through the store or through the pseudo-ID's note.
func (r *Refresher) acquireOnce(ctx context.Context, pid string, query tokencache.Token, fl *flight) (tokencache.Token, error) {
	if succ, ok := r.pending.get(pid); ok {
		return succ, nil // made by this process; its save is being retried
	}
	w, err := r.newWaiter(ctx, pid, fl)
	if err != nil {
		return tokencache.Token{}, err
	}
	defer w.stop()
	for {
		if tok, err, done := r.acquired(ctx, pid, query, fl); done {
			return tok, err
		}
		held, err := r.coord.tryLock(ctx, pid)
		if err == nil {
			tok, err := r.acquireHolding(ctx, held, w, pid, query, fl)
			if !errors.Is(err, errLockLost) {
				return tok, err
			}
		} else if !errors.Is(err, lock.ErrNotObtained) {
			return tokencache.Token{}, storeErr(ctx, err)
		}
		if err := w.wait(ctx, "token exchange"); err != nil {
			return tokencache.Token{}, err
		}
	}
}

// acquired reports what became of the query's secret: the token it made
// (renewed when due), or that the server rejected it. done is false when
// nobody has used it yet.
func (r *Refresher) acquired(ctx context.Context, pid string, query tokencache.Token, fl *flight) (tokencache.Token, error, bool) {
	tok, err := r.store.FindToken(ctx, query)
	if err == nil {
		return r.freshOrRenewed(ctx, tok, fl)
	}
	if !errors.Is(err, tokencache.ErrNotFound) {
		return tokencache.Token{}, storeErr(ctx, err), true
	}
	n, err := r.coord.note(ctx, pid)
	if err != nil {
		return tokencache.Token{}, storeErr(ctx, err), true
	}
	rule := tokencache.RuleOf(query)
	switch n.kind {
	case noteDone:
		// The secret was spent for token n.id (by this query, or by a
		// refresh of that token): renew that token under its own lock,
		// never send the secret again. A query that keeps presenting the
		// secret keeps the note alive.
		_ = r.coord.setNote(ctx, pid, n, r.cfg.aliasMemory)
		tok, err := r.store.FindTokenByID(ctx, n.id)
		if errors.Is(err, tokencache.ErrNotFound) {
			return tokencache.Token{}, errorf("refresher: the %s was spent for token %s, which no longer exists: %w", rule, n.id, ErrInvalidGrant), true
		}
		if err != nil {
			return tokencache.Token{}, storeErr(ctx, err), true
		}
		return r.freshOrRenewed(ctx, tok, fl)
	case noteDead:
		return tokencache.Token{}, errorf("refresher: the %s was rejected by the authorization server: %w", rule, ErrInvalidGrant), true
	case noteClient:
		return tokencache.Token{}, errorf("refresher: the authorization server refused the client of the %s; retrying after the cooldown: %w: %w",
			rule, ErrInvalidClient, ErrInvalidGrant), true
	case noteCool:
		return tokencache.Token{}, errorf("%w: the last %s attempt failed; retrying after the cooldown", ErrTemporary, rule), true
	}
	return tokencache.Token{}, nil, false
}

// freshOrRenewed returns tok, renewed first when it is due: a later caller
// of an old refresh token gets the token that refresh token became.
func (r *Refresher) freshOrRenewed(ctx context.Context, tok tokencache.Token, fl *flight) (tokencache.Token, error, bool) {
	if succ, ok := r.pending.newer(tok); ok {
		tok = succ
	}
	switch r.due(tok, r.cfg.now()) {
	case spent:
		return tokencache.Token{}, errSpent(tok), true
	case expired:
		t, err := r.renew(ctx, tok.ID, true, fl)
		return t, err, true
	case stale:
		r.renewInBackground(ctx, tok.ID)
	}
	return tok, nil, true
}

// acquireHolding makes the query's token while holding the pseudo-ID's
// lock, and releases it, unless a save it retries in the background takes
// it over. errLockLost means the lock passed on before anything was sent.
func (r *Refresher) acquireHolding(ctx context.Context, held holding, w *waiter, pid string, query tokencache.Token, fl *flight) (tokencache.Token, error) {
	kept := false
	defer func() {
		if !kept {
			r.letGo(ctx, held)
		}
	}()
	for {
		if tok, err, done := r.acquired(ctx, pid, query, fl); done {
			return tok, err
		}
		f, err := held.begin(ctx, 0, r.cfg.flightTTL)
		if err == nil {
			used, err := r.usedSinceLook(ctx, pid, query)
			if err != nil {
				return tokencache.Token{}, storeErr(ctx, err)
			}
			if !used {
				break
			}
			held.end(ctx)
			continue // acquired now says what became of the secret
		}
		switch {
		case errors.Is(err, lock.ErrInFlight):
			r.event(ctx, EventFlightWait, nil)
			if err := w.waitUntil(ctx, time.Now().Add(f.TTL), "token exchange in flight"); err != nil {
				return tokencache.Token{}, err
			}
		case errors.Is(err, lock.ErrNotHeld):
			return tokencache.Token{}, errLockLost
		default:
			return tokencache.Token{}, storeErr(ctx, err)
		}
	}
	seed := query
	seed.AccessToken, seed.Expiry, seed.Version = "", time.Time{}, 0
	if seed.GrantToken != "" {
		seed.RefreshToken = "" // a grant is exchanged, not refreshed
	}
	if r.closing.Load() {
		return tokencache.Token{}, errShuttingDown // as in renewHolding: nothing is sent once Shutdown has begun
	}
	made, err := r.callEndpoint(ctx, seed)
	if err != nil {
		return tokencache.Token{}, r.acquireFailed(ctx, pid, query, err)
	}
	save := func(ctx context.Context) (tokencache.Token, error) {
		t := made
		err := r.store.SaveToken(ctx, &t)
		return t, err
	}
	after := func(ctx context.Context, saved tokencache.Token) {
		_ = r.coord.setNote(ctx, pid, note{kind: noteDone, id: saved.ID}, r.cfg.aliasMemory)
	}
	fl.refreshed = true
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.firstSaveTimeout())
	saved, err := save(sctx)
	cancel()
	switch {
	case err == nil:
		after(ctx, saved)
		r.coord.announce(ctx, pid)
		return saved, nil
	case errors.Is(err, tokencache.ErrInvalidToken):
		r.event(ctx, EventSaveLost, err)
		return made, nil
	}
	r.event(ctx, EventSaveRetry, err)
	r.pending.put(pid, made, 0)
	r.saveLater(ctx, held, pid, save, after)
	kept = true
	return made, nil
}

// usedSinceLook reports whether the query's secret was used by someone
// else since acquired looked, now that this holder's in-flight record is in
// place (the argument of savedSinceRead): its token is in the store, or its
// pseudo-ID has a note.
func (r *Refresher) usedSinceLook(ctx context.Context, pid string, query tokencache.Token) (bool, error) {
	_, err := r.store.FindToken(ctx, query)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, tokencache.ErrNotFound) {
		return false, err
	}
	n, err := r.coord.note(ctx, pid)
	if err != nil {
		return false, err
	}
	return n.kind != noteNone, nil
}

// acquireFailed notes for the fleet why the query's secret made no token,
// and returns the error for the callers.
func (r *Refresher) acquireFailed(ctx context.Context, pid string, query tokencache.Token, cause error) error {
	n := note{kind: noteCool}
	switch {
	case errors.Is(cause, ErrInvalidClient):
		n.kind = noteClient
	case errors.Is(cause, ErrInvalidGrant):
		n.kind = noteDead
	}
	_ = r.coord.setNote(ctx, pid, n, r.noteTTL(n))
	r.coord.announce(ctx, pid)
	rule := tokencache.RuleOf(query)
	switch n.kind {
	case noteClient:
		return errorf("refresher: %s: %w", rule, withInvalidGrant(cause))
	case noteDead:
		return errorf("refresher: %s: %w", rule, cause)
	default:
		return errorf("%w: %s: %w", ErrTemporary, rule, cause)
	}
}
