package chaos

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
)

// errNoDurable is returned while this build has no durable record
// (sqlstore and redisstore.WithDurableStore not merged yet).
var errNoDurable = errors.New("chaos: this build has no durable record (sqlstore)")

// durableAvailable reports whether scenarios with the durable record can
// run in this build.
const durableAvailable = false

// openDurable opens redisstore in front of the record at dsn.
func openDurable(ctx context.Context, rdb redis.UniversalClient, ns, dsn string) (tokencache.Store, func(), error) {
	return nil, nil, errNoDurable
}
