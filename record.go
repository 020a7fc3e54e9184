package tokencache

import "context"

// RecordFinder is implemented by a store that keeps a cache in front of a
// durable record, such as redisstore with WithDurableStore.
// FindTokenFromRecord is FindToken answered by the record, never by the
// cache, which it then brings up to date. A read that decides a refresh
// (the refresher's read under the lock) uses it, so that a cache that was
// flushed, restarted or rolled back can never hand out a refresh token that
// was already rotated. Its errors are FindToken's.
type RecordFinder interface {
	FindTokenFromRecord(ctx context.Context, query Token) (Token, error)
}
