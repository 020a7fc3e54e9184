package refresher

import (
	"context"
	"errors"
	"time"

	"github.com/tokencache/tokencache"
)

// A successor is the token the server's answer made. Once the server has
// answered, the refresh token (or grant code) it was sent is dead, so the
// successor is the user's session: it is served at once and never dropped
// while the process lives. The first save runs right after the answer,
// with nothing in between, to keep the window in which a crash loses the
// successor as short as it can be; when it fails, the successor waits in
// memory (r.pending, served to this process's callers) and the save is
// retried in the background, conditional on the revision that was renewed,
// until it lands or Shutdown's deadline.

// errSuperseded says that the store holds a newer token than the one a
// save was renewing, saved by someone else: theirs wins.
var errSuperseded = errors.New("refresher: a newer token was saved meanwhile")

// errAbandoned is why Shutdown's deadline ended a save's retries.
var errAbandoned = errors.New("refresher: shutdown ended the retries of a save")

// Retry pacing of a successor's save.
const (
	firstRetryPause    = 50 * time.Millisecond
	maxRetryPause      = 250 * time.Millisecond // a save that lands late keeps the fleet waiting
	saveAttemptTimeout = 2 * time.Second
)

// firstSaveTimeout bounds the save that follows the server's answer: past
// it the successor is served from memory and saved in the background. It
// is longer than a read's bound, since a save takes a few round trips and
// one that times out needlessly makes the fleet's waiters wait for the
// retry.
func (r *Refresher) firstSaveTimeout() time.Duration { return max(4*r.cfg.storeTimeout, time.Second) }

// land saves the renewal succ of sent, and ends the in-flight record. It
// returns what to serve, whether that is this process's renewal (ours), and
// whether the background save took the lock over (kept).
func (r *Refresher) land(ctx context.Context, held holding, id string, succ, sent tokencache.Token) (_ tokencache.Token, ours, kept bool) {
	save := func(ctx context.Context) (tokencache.Token, error) { return r.saveSuccessor(ctx, succ, sent) }
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.firstSaveTimeout())
	saved, err := save(sctx)
	cancel()
	// On the way out the caller's letGo ends the in-flight record and
	// releases the lock, after the fleet has been told.
	switch {
	case err == nil:
		r.coord.announce(ctx, id)
		return saved, true, false
	case errors.Is(err, errSuperseded):
		r.coord.announce(ctx, id)
		return saved, false, false
	case errors.Is(err, tokencache.ErrInvalidToken):
		// The store refuses it (an oversized field…): retrying cannot help.
		r.event(ctx, EventSaveLost, err)
		return succ, true, false
	}
	r.event(ctx, EventSaveRetry, err)
	r.pending.put(id, succ, sent.Version)
	r.saveLater(ctx, held, id, save, nil)
	return succ, true, true
}

// saveSuccessor saves succ, the renewal of sent, conditional on sent's
// revision: a Version compare-and-set, which suffices also when the lock
// has expired meanwhile, as long as nobody else saved. On a conflict it
// looks at what is stored: a token that vanished is inserted again under
// its ID; its own earlier attempt (whose answer was lost) counts as
// landed; a stored token that still holds the refresh token sent, which
// the server has retired, is replaced; anything else newer wins
// (errSuperseded, with that token).
func (r *Refresher) saveSuccessor(ctx context.Context, succ, sent tokencache.Token) (tokencache.Token, error) {
	t := succ
	t.ID, t.Version = sent.ID, sent.Version
	for range 4 {
		attempt := t
		err := r.store.SaveToken(ctx, &attempt)
		if err == nil {
			return attempt, nil
		}
		if !errors.Is(err, tokencache.ErrConflict) {
			return tokencache.Token{}, err
		}
		latest, err := r.store.FindTokenByID(ctx, sent.ID)
		switch {
		case errors.Is(err, tokencache.ErrNotFound):
			t.Version = 0 // it vanished: insert it again under its ID
		case err != nil:
			return tokencache.Token{}, err
		case latest.AccessToken == succ.AccessToken && latest.RefreshToken == succ.RefreshToken:
			return latest, nil
		case sent.RefreshToken != "" && latest.RefreshToken == sent.RefreshToken && succ.RefreshToken != sent.RefreshToken:
			t.Version = latest.Version // what is stored holds a retired refresh token
		default:
			return latest, errSuperseded
		}
	}
	return tokencache.Token{}, errorf("refresher: saving the renewal of token %s: %w", sent.ID, tokencache.ErrConflict)
}

// saveLater retries save in the background, pausing longer after each
// failure, until it lands (then after runs, the in-flight record ends,
// the lock is released and the fleet is told) or Shutdown's deadline
// passes. It keeps the in-flight record alive meanwhile, so that nobody
// sends the refresh token the successor replaced. Shutdown waits for it.
func (r *Refresher) saveLater(ctx context.Context, held holding, key string, save func(context.Context) (tokencache.Token, error), after func(context.Context, tokencache.Token)) {
	r.saving.Add(1)
	vals := context.WithoutCancel(ctx) // the caller's values (a span), not its end
	go func() {
		defer r.saving.Add(-1)
		defer func() {
			rctx, cancel := context.WithTimeout(vals, saveAttemptTimeout)
			held.release(rctx)
			cancel()
		}()
		pause := firstRetryPause
		timer := time.NewTimer(pause)
		defer timer.Stop()
		for {
			select {
			case <-r.abandon:
				r.pending.drop(key)
				r.event(vals, EventSaveLost, errAbandoned)
				return
			case <-timer.C:
			}
			actx, cancel := context.WithTimeout(vals, saveAttemptTimeout)
			saved, err := save(actx)
			if err == nil || errors.Is(err, errSuperseded) {
				if after != nil && err == nil {
					after(actx, saved)
				}
				r.pending.drop(key)
				r.coord.announce(actx, key)
				held.end(actx)
				cancel()
				r.event(vals, EventSaveLanded, nil)
				return
			}
			if errors.Is(err, tokencache.ErrInvalidToken) {
				held.end(actx)
				cancel()
				r.pending.drop(key)
				r.event(vals, EventSaveLost, err)
				return
			}
			held.extend(actx, r.cfg.flightTTL)
			cancel()
			pause = min(2*pause, maxRetryPause)
			timer.Reset(pause)
		}
	}()
}

// letGo ends the holder's in-flight record, if it wrote one, and releases
// its lock, in the background: the flight's callers need neither, and the
// fleet's waiters were woken by the announcement already. Shutdown waits
// for it.
func (r *Refresher) letGo(ctx context.Context, held holding) {
	r.releasing.Add(1)
	vals := context.WithoutCancel(ctx)
	go func() {
		defer r.releasing.Add(-1)
		rctx, cancel := context.WithTimeout(vals, saveAttemptTimeout)
		defer cancel()
		held.end(rctx)
		held.release(rctx)
	}()
}
