package refresher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
)

// errLockLost is how a holder reports that its lock passed on before it
// sent anything: its caller starts over, waiting for the new holder.
var errLockLost = errors.New("refresher: the lock passed on before the refresh was sent")

// readUnderLock reads the token a holder is about to renew: from the
// durable record when the store has one (tokencache.RecordFinder, which
// redisstore with WithDurableStore implements), else from the store. The
// read that decides a refresh then never comes from a cache that was
// flushed, restarted or rolled back, which could hand the holder a refresh
// token that was already rotated.
func (r *Refresher) readUnderLock(ctx context.Context, id string) (tokencache.Token, error) {
	if rf, ok := r.store.(tokencache.RecordFinder); ok {
		return rf.FindTokenFromRecord(ctx, tokencache.Token{ID: id})
	}
	return r.store.FindTokenByID(ctx, id)
}

// renew makes the token with this ID fresh: it renews it while holding its
// lock, or, when another worker holds the lock and wait is set, waits for
// that worker's result. It runs on a context detached from any caller, and
// records in fl what it did.
func (r *Refresher) renew(ctx context.Context, id string, wait bool, fl *flight) (tokencache.Token, error) {
	if succ, ok := r.pending.get(id); ok && usable(succ, r.cfg.now()) {
		return succ, nil // this process renewed it; its save is being retried
	}
	w, err := r.newWaiter(ctx, id, fl)
	if err != nil {
		return tokencache.Token{}, err
	}
	defer w.stop()
	for {
		cur, err := r.store.FindTokenByID(ctx, id)
		if err != nil {
			return tokencache.Token{}, storeErr(ctx, err)
		}
		if succ, ok := r.pending.newer(cur); ok {
			return succ, nil
		}
		// A waiter is served by any token that works; a background renewal
		// is done once the token is out of the window.
		switch d := r.due(cur, r.cfg.now()); {
		case d == fresh || (wait && d == stale):
			return cur, nil
		case d == spent:
			return tokencache.Token{}, errSpent(cur)
		}
		if tok, err, done := r.checkNote(ctx, cur); done {
			fl.stale = err == nil
			return tok, err
		}
		held, err := r.coord.tryLock(ctx, id)
		switch {
		case err == nil:
			tok, err := r.renewHolding(ctx, held, w, id, wait, fl)
			if !errors.Is(err, errLockLost) {
				return tok, err
			}
			if !wait {
				return cur, nil
			}
		case !errors.Is(err, lock.ErrNotObtained):
			return tokencache.Token{}, storeErr(ctx, err)
		case !wait:
			return cur, nil // another worker is renewing it
		}
		if err := w.wait(ctx, "refresh of token "+id); err != nil {
			return tokencache.Token{}, err
		}
	}
}

// checkNote applies the fleet's note about cur, if any: a dead token is
// ErrInvalidGrant; a cooling one, or one whose client was refused, is
// returned while still valid and is an error otherwise. done is false when
// the note does not apply.
func (r *Refresher) checkNote(ctx context.Context, cur tokencache.Token) (tokencache.Token, error, bool) {
	n, err := r.coord.note(ctx, cur.ID)
	if err != nil {
		return tokencache.Token{}, storeErr(ctx, err), true
	}
	if !n.about(cur.Version) {
		return tokencache.Token{}, nil, false // about an older revision, or none
	}
	if n.kind == noteDead {
		return tokencache.Token{}, errorf("refresher: token %s was rejected by the authorization server: %w", cur.ID, ErrInvalidGrant), true
	}
	if usable(cur, r.cfg.now()) {
		return cur, nil, true
	}
	if n.kind == noteClient {
		return tokencache.Token{}, errorf("refresher: the authorization server refused the client of token %s; retrying after the cooldown: %w: %w",
			cur.ID, ErrInvalidClient, ErrInvalidGrant), true
	}
	return tokencache.Token{}, errorf("%w: the last refresh of token %s failed; retrying after the cooldown", ErrTemporary, cur.ID), true
}

// renewHolding renews the token while holding its lock, and releases the
// lock, unless a save it retries in the background takes it over. w
// watches the token. errLockLost means the lock passed on before anything
// was sent.
func (r *Refresher) renewHolding(ctx context.Context, held holding, w *waiter, id string, wait bool, fl *flight) (tokencache.Token, error) {
	kept := false
	defer func() {
		if !kept {
			r.letGo(ctx, held)
		}
	}()
	var cur tokencache.Token
	for {
		// Read again under the lock: the previous holder may have just
		// renewed it.
		var err error
		cur, err = r.readUnderLock(ctx, id)
		if err != nil {
			return tokencache.Token{}, storeErr(ctx, err)
		}
		if succ, ok := r.pending.newer(cur); ok {
			return succ, nil
		}
		switch r.due(cur, r.cfg.now()) {
		case fresh:
			return cur, nil
		case spent:
			return tokencache.Token{}, errSpent(cur)
		}
		if tok, err, done := r.checkNote(ctx, cur); done {
			fl.stale = err == nil
			return tok, err
		}
		r.noteSpending(ctx, cur)
		// The record of what is about to be sent, as late as possible:
		// right before the request, in the round trip that checks the lock.
		f, err := held.begin(ctx, cur.Version, r.cfg.flightTTL)
		if err == nil {
			spent, err := r.savedSinceRead(ctx, id, cur)
			if err != nil {
				return tokencache.Token{}, storeErr(ctx, err)
			}
			if !spent {
				break
			}
			held.end(ctx)
			continue // read what the earlier holder saved
		}
		switch {
		case errors.Is(err, lock.ErrInFlight):
			// Another holder sent this revision and may still save its
			// answer (it may be paused, not dead): wait for its outcome,
			// or for its record to expire.
			if !wait {
				return cur, nil
			}
			r.event(ctx, EventFlightWait, nil)
			if err := w.waitUntil(ctx, time.Now().Add(f.TTL), "refresh in flight of token "+id); err != nil {
				return tokencache.Token{}, err
			}
		case errors.Is(err, lock.ErrNotHeld):
			return tokencache.Token{}, errLockLost
		default:
			return tokencache.Token{}, storeErr(ctx, err)
		}
	}
	if r.closing.Load() {
		// Shutdown began after this renewal started: a request sent now
		// could be answered after the process has gone, and its successor
		// lost. letGo ends the record; another worker renews it.
		if usable(cur, r.cfg.now()) {
			fl.stale = true
			return cur, nil
		}
		return tokencache.Token{}, errShuttingDown
	}
	renewed, err := r.callEndpoint(ctx, cur)
	if err != nil {
		return r.failed(ctx, cur, err, fl) // nothing to save: letGo ends the record
	}
	renewed.ID, renewed.Version = cur.ID, cur.Version
	tok, ours, keep := r.land(ctx, held, id, renewed, cur)
	kept = keep
	fl.refreshed = ours
	return tok, nil
}

// savedSinceRead reports whether the token has moved past cur, the
// revision read under the lock, now that this holder's in-flight record is
// in place. An earlier holder whose lock expired (paused, not dead) keeps
// its own record until its answer is saved, so this holder's record could
// be written only if that earlier holder had ended its record, and it ends
// it only after its save: a save that landed between the read and the
// record is visible to this read, and cur's refresh token is then spent.
func (r *Refresher) savedSinceRead(ctx context.Context, id string, cur tokencache.Token) (bool, error) {
	now, err := r.readUnderLock(ctx, id)
	if errors.Is(err, tokencache.ErrNotFound) {
		return true, nil // deleted meanwhile: the loop's read says what to do
	}
	if err != nil {
		return false, err
	}
	return now.Version != cur.Version, nil
}

// noteSpending tells the fleet, before cur's refresh token is sent, that
// it belongs to token cur.ID: a query that later presents that refresh
// token (rotated away by then) is served that token instead of sending
// the refresh token again. A failure is ignored: the in-flight record
// that follows needs Redis too.
func (r *Refresher) noteSpending(ctx context.Context, cur tokencache.Token) {
	if cur.RefreshToken == "" {
		return
	}
	pid := pseudoID(tokencache.Token{ClientID: cur.ClientID, RefreshToken: cur.RefreshToken})
	_ = r.coord.setNote(ctx, pid, note{kind: noteDone, id: cur.ID}, r.cfg.aliasMemory)
}

// callEndpoint renews cur: a refresh when it has a refresh token, else the
// exchange of its grant token.
func (r *Refresher) callEndpoint(ctx context.Context, cur tokencache.Token) (tokencache.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.refreshTimeout)
	defer cancel()
	exchange := cur.RefreshToken == ""
	if r.cfg.obs == nil {
		return r.endpointCall(ctx, cur, exchange)
	}
	ctx, done := r.cfg.obs.RefreshCall(ctx, cur.ID, exchange)
	t, err := r.endpointCall(ctx, cur, exchange)
	switch {
	case err == nil:
		done(OutcomeOK, nil)
	case errors.Is(err, ErrInvalidGrant) || errors.Is(err, ErrInvalidClient):
		done(OutcomeInvalidGrant, err)
	default:
		done(OutcomeError, err)
	}
	return t, err
}

func (r *Refresher) endpointCall(ctx context.Context, cur tokencache.Token, exchange bool) (tokencache.Token, error) {
	if exchange {
		return r.ep.Exchange(ctx, cur)
	}
	return r.ep.Refresh(ctx, cur)
}

// failed handles an endpoint error for cur: a rejected grant is noted as
// dead for the fleet, a refused client and anything else start the
// cooldown, and a token that is still valid is served through it.
func (r *Refresher) failed(ctx context.Context, cur tokencache.Token, cause error, fl *flight) (tokencache.Token, error) {
	n := note{kind: noteCool, version: cur.Version}
	switch {
	case errors.Is(cause, ErrInvalidClient):
		n.kind = noteClient // the application's configuration, not the user's token
	case errors.Is(cause, ErrInvalidGrant):
		// A holder whose lock expired may have renewed it meanwhile, spending
		// the refresh token we just sent: then the store has its result.
		if latest, err := r.store.FindTokenByID(ctx, cur.ID); err == nil && latest.Version != cur.Version && r.due(latest, r.cfg.now()) != expired {
			return latest, nil
		}
		n.kind = noteDead
	}
	_ = r.coord.setNote(ctx, cur.ID, n, r.noteTTL(n))
	r.coord.announce(ctx, cur.ID)
	switch {
	case n.kind == noteDead:
		return tokencache.Token{}, errorf("refresher: token %s: %w", cur.ID, cause)
	case usable(cur, r.cfg.now()):
		fl.stale = true
		return cur, nil // still valid: serve it through the outage
	case n.kind == noteClient:
		return tokencache.Token{}, errorf("refresher: token %s: %w", cur.ID, withInvalidGrant(cause))
	default:
		return tokencache.Token{}, errorf("%w: refreshing token %s: %w", ErrTemporary, cur.ID, cause)
	}
}

// withInvalidGrant makes a refused client's error wrap ErrInvalidGrant too,
// as the contract says, also when an Endpoint of the application's own
// wrapped only ErrInvalidClient.
func withInvalidGrant(err error) error {
	if errors.Is(err, ErrInvalidGrant) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidGrant, err)
}
