package redisstore

import "github.com/tokencache/tokencache"

// IndexKey exposes the name of an index entry to the external tests, which
// plant stale entries in it.
func IndexKey(s *Store, rule tokencache.Rule, t tokencache.Token) string {
	return s.keys.index(rule, t)
}

// IDsKey exposes the name of the set of IDs.
func IDsKey(s *Store) string { return s.keys.ids() }
