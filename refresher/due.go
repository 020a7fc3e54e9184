package refresher

import (
	"hash/fnv"
	"strconv"
	"time"

	"github.com/tokencache/tokencache"
)

// freshness says what a token needs.
type freshness int

const (
	fresh   freshness = iota // nothing
	stale                    // still valid, but inside the refresh window
	expired                  // a renewal before it can be used
	spent                    // expired, and nothing can renew it
)

// renewable reports whether t has something to renew it with: a refresh
// token, or a grant code not exchanged yet. A grant code is single-use: a
// token that already has an access token was made from it, so the code is
// spent, whatever the server answered about a refresh token.
func renewable(t tokencache.Token) bool {
	return t.RefreshToken != "" || (t.GrantToken != "" && t.AccessToken == "")
}

func (r *Refresher) due(t tokencache.Token, now time.Time) freshness {
	switch {
	case t.AccessToken == "" || t.ExpiresWithin(now, 0):
		if renewable(t) {
			return expired
		}
		return spent
	case !renewable(t):
		return fresh // valid, and nothing could renew it before it expires
	case t.ExpiresWithin(now, r.window(t)):
		return stale
	default:
		return fresh
	}
}

// errSpent is why Token has no token for t: it expired and nothing can
// renew it. A token made from a grant code (now spent) means the user has
// to authorize again: ErrInvalidGrant. An access token alone is gone, as a
// store says of an expired one: ErrNotFound.
func errSpent(t tokencache.Token) error {
	if t.GrantToken != "" {
		return errorf("refresher: token %s has expired, has no refresh token and its grant code is spent: %w", t.ID, ErrInvalidGrant)
	}
	return errorf("refresher: token %s has expired and has no refresh token to renew it: %w", t.ID, tokencache.ErrNotFound)
}

// window is the refresh window of t, shortened by a jitter that is fixed for
// each token revision, so that all workers agree on it.
func (r *Refresher) window(t tokencache.Token) time.Duration {
	if r.cfg.jitter == 0 {
		return r.cfg.window
	}
	h := fnv.New64a()
	h.Write([]byte(t.ID))
	h.Write([]byte(strconv.FormatInt(t.Version, 10)))
	frac := float64(h.Sum64()%10000) / 10000 * r.cfg.jitter
	return time.Duration(float64(r.cfg.window) * (1 - frac))
}
