package redisstore_test

import (
	"time"

	"github.com/tokencache/tokencache/redisstore"
)

// TestModel kills a process at every command in turn, and the process that
// replaces it waits the pending bound for the claims the dead one left.
// Shorten the bound: correctness does not depend on it (a fenced claim can
// never commit), only how long a reader waits does.
func init() {
	modelOptions = append(modelOptions, redisstore.WithPendingBound(200*time.Millisecond))
}
