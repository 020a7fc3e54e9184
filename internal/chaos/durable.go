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
// dsn; the returned func closes the record.
func openDurable(ctx context.Context, rdb redis.UniversalClient, ns, dsn string) (tokencache.Store, func(), error) {
	rec, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("chaos: open the durable record: %w", err)
	}
	s := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithDurableStore(rec))
	return s, func() { _ = rec.Close() }, nil
}
