package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/announce"
)

var _ tokencache.ChangeWatcher = (*Store)(nil)

// WatchChanges reports to h every token saved or deleted through any Store
// of this namespace on this Redis, from any process, as the store announces
// them on the channel "<namespace>:announce" (the message is the token's ID,
// or "*" after DeleteTokens; never a secret). It holds one pub/sub
// connection of its own, pings it every second while quiet, and reconnects
// after a failure; h.Watching(false) tells when announcements may be
// missed, Watching(true) when they reach h again. See
// tokencache.ChangeWatcher.
func (s *Store) WatchChanges(h tokencache.ChangeHandler) (stop func() error) {
	if s.err != nil || h == nil {
		return func() error { return nil }
	}
	return announce.Subscribe(s.rdb, s.keys.ns, changeHandler{h}).Close
}

// changeHandler adapts a tokencache.ChangeHandler to announce.Handler.
type changeHandler struct{ h tokencache.ChangeHandler }

func (c changeHandler) Drop(id string) { c.h.Changed(id) }
func (c changeHandler) DropAll()       { c.h.ChangedAll() }
func (c changeHandler) Up()            { c.h.Watching(true) }
func (c changeHandler) Down()          { c.h.Watching(false) }

// changedID announces the token with this ID after a save or delete that
// returned err, unless err says that nothing changed (bad input, a version
// conflict, an invalid option). A failure of Redis may have come after the
// change committed, so it is announced too, in the background: an extra
// announcement costs a cache entry, a missing one serves a stale token
// until the caches' TTL. It returns err.
func (s *Store) changedID(ctx context.Context, err error, id string) error {
	if id == "" || errors.Is(err, tokencache.ErrInvalidToken) || errors.Is(err, tokencache.ErrConflict) || errors.Is(err, ErrBadOption) {
		return err
	}
	if err != nil || ctx.Err() != nil {
		go s.announce(context.WithoutCancel(ctx), id) // the caller's deadline has passed or Redis is failing: do not make it wait
		return err
	}
	if announce.Publish(ctx, s.rdb, s.keys.ns, id) != nil {
		go s.announce(context.WithoutCancel(ctx), id) // once more, on the store's own time
	}
	return nil
}

// changedToken is changedID for a saved token, whose ID the save may have
// assigned.
func (s *Store) changedToken(ctx context.Context, err error, t *tokencache.Token) error {
	if t == nil {
		return err
	}
	return s.changedID(ctx, err, t.ID)
}

// announce tells the fleet, within announceTimeout, that the tokens with
// these IDs changed. A failure is dropped: caches that miss the message
// still drop the entry by their TTL.
func (s *Store) announce(ctx context.Context, ids ...string) {
	ctx, cancel := context.WithTimeout(ctx, announceTimeout)
	defer cancel()
	_ = announce.Publish(ctx, s.rdb, s.keys.ns, ids...)
}

// announceTimeout bounds an announcement sent in the background.
const announceTimeout = time.Second
