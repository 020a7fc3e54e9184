package chaos

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/sqlstore"
)

// durableAvailable reports whether scenarios with the durable record can
// run in this build.
const durableAvailable = true

// openDurable opens redisstore over rdb in front of the sqlstore record at
// dsn (traced by tr, when not nil); it returns the store, the record it
// uses, and a func that closes the record.
func openDurable(ctx context.Context, rdb redis.UniversalClient, ns, dsn string, tr *tracer) (tokencache.Store, tokencache.Store, func(), error) {
	rec, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("chaos: open the durable record: %w", err)
	}
	var record tokencache.Store = rec
	if tr != nil {
		record = &tracedRecord{Store: rec, fr: rec, t: tr}
	}
	s := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithDurableStore(record))
	return s, record, func() { _ = rec.Close() }, nil
}
