package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/connect"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/sqlstore"
)

// Factory hands the commands what they share: the IO streams, the settings
// bound to their flags, and the connections those settings name. Tests
// build one with buffers for streams and, where a real server is not the
// point, replace OpenRedis.
type Factory struct {
	IO       *IOStreams
	Settings *Settings
	Now      func() time.Time

	// OpenRedis connects to the Redis of the settings and checks that it
	// answers (connect.Open by default).
	OpenRedis func(ctx context.Context, o connect.Options) (redis.UniversalClient, *connect.Endpoint, error)

	// OpenDurable opens the durable record a --durable DSN names
	// (OpenSQLRecord by default).
	OpenDurable func(ctx context.Context, dsn string, s *Settings) (Durable, error)
}

// Durable is an open durable record.
type Durable interface {
	tokencache.Store
	Close() error
}

// New returns the Factory of a process with streams io.
func New(io *IOStreams) *Factory {
	return &Factory{IO: io, Settings: &Settings{}, Now: time.Now, OpenRedis: connect.Open, OpenDurable: OpenSQLRecord}
}

// Conn is an open token store: the Redis client, the store of the settings,
// and the durable record behind it when --durable names one.
type Conn struct {
	Redis    redis.UniversalClient
	Endpoint *connect.Endpoint
	Store    *redisstore.Store
	Durable  Durable // nil without --durable

	opts []redisstore.Option // the settings' store options, for NewStore
}

// NewStore returns another store over the same client and settings, with
// extra options after theirs (an observer made once the client exists).
func (c *Conn) NewStore(extra ...redisstore.Option) *redisstore.Store {
	return redisstore.New(c.Redis, append(append([]redisstore.Option(nil), c.opts...), extra...)...)
}

// Close closes the record and the Redis client.
func (c *Conn) Close() error {
	var err error
	if c.Durable != nil {
		err = c.Durable.Close()
	}
	return errors.Join(err, c.Redis.Close())
}

// Redis connects to the Redis of the settings (no store).
func (f *Factory) Redis(ctx context.Context) (redis.UniversalClient, *connect.Endpoint, error) {
	return f.OpenRedis(ctx, f.Settings.ConnectOptions())
}

// OpenStore connects to Redis and returns the token store of the settings,
// with extra options after theirs (an observer, say). An invalid setting is
// a UsageError; a server that does not answer wraps connect.ErrUnreachable
// or is an UnreachableError (the record).
func (f *Factory) OpenStore(ctx context.Context, extra ...redisstore.Option) (*Conn, error) {
	opts, err := f.Settings.StoreOptions()
	if err != nil {
		return nil, err
	}
	// An invalid namespace makes every store method fail with ErrBadOption;
	// FindTokenByID reports it before it talks to Redis, so this asks the
	// store itself, on a client that is never used.
	probe := redis.NewClient(&redis.Options{Addr: "127.0.0.1:0"})
	_, perr := redisstore.New(probe, opts...).FindTokenByID(ctx, "")
	_ = probe.Close()
	if errors.Is(perr, redisstore.ErrBadOption) {
		reason := strings.TrimPrefix(perr.Error(), redisstore.ErrBadOption.Error()+": ")
		return nil, UsageErrorf("invalid store settings: %s", reason)
	}
	rdb, ep, err := f.Redis(ctx)
	if err != nil {
		// With a record, an unreachable Redis is no reason to stop: reads
		// and saves go to the record (redisstore.WithDurableStore). Without
		// one, there is nothing to work on.
		if f.Settings.Durable == "" || !errors.Is(err, connect.ErrUnreachable) {
			return nil, err
		}
		var perr error
		if ep, perr = connect.Parse(f.Settings.ConnectOptions()); perr != nil {
			return nil, perr
		}
		fmt.Fprintf(f.IO.ErrOut, "tokencache: warning: %v; working on the durable record alone\n", err)
		rdb = ep.NewClient()
	}
	c := &Conn{Redis: rdb, Endpoint: ep}
	if f.Settings.Durable != "" {
		d, err := f.OpenDurable(ctx, f.Settings.Durable, f.Settings)
		if err != nil {
			_ = rdb.Close()
			return nil, err
		}
		c.Durable = d
		opts = append(opts, durableOption(d))
	}
	c.opts = opts
	c.Store = c.NewStore(extra...)
	return c, nil
}

// WithStore opens the store, runs fn, and closes it.
func (f *Factory) WithStore(ctx context.Context, fn func(c *Conn) error) error {
	c, err := f.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// durableOption puts Redis in front of d.
func durableOption(d Durable) redisstore.Option { return redisstore.WithDurableStore(d) }

// OpenSQLRecord opens the sqlstore record dsn names, with the same refresh
// retention and index key as the Redis store, so that both find the same
// tokens. A DSN it cannot use is a UsageError; a database it cannot reach
// or migrate is an UnreachableError. Messages never quote the DSN.
func OpenSQLRecord(ctx context.Context, dsn string, s *Settings) (Durable, error) {
	opts := []sqlstore.Option{sqlstore.WithRefreshRetention(s.RefreshRetention)}
	key, err := s.IndexKey()
	if err != nil {
		return nil, err
	}
	if key != nil {
		opts = append(opts, sqlstore.WithIndexKey(key))
	}
	rec, err := sqlstore.Open(ctx, dsn, opts...)
	switch {
	case errors.Is(err, sqlstore.ErrBadDSN), errors.Is(err, sqlstore.ErrBadOption):
		return nil, UsageErrorf("--durable: %s", strings.TrimPrefix(err.Error(), "sqlstore: "))
	case err != nil:
		return nil, &UnreachableError{Err: fmt.Errorf("the durable record (--durable) cannot be used: %s", strings.TrimPrefix(err.Error(), "sqlstore: "))}
	}
	return rec, nil
}
