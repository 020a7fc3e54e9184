package cli

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/connect"
	"github.com/tokencache/tokencache/redisstore"
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

	// OpenDurable opens the durable record a --durable DSN names. Nil in a
	// build without one: --durable is then refused.
	OpenDurable func(ctx context.Context, dsn string) (Durable, error)
}

// Durable is an open durable record.
type Durable interface {
	tokencache.Store
	Close() error
}

// New returns the Factory of a process with streams io.
func New(io *IOStreams) *Factory {
	return &Factory{IO: io, Settings: &Settings{}, Now: time.Now, OpenRedis: connect.Open}
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
	if f.Settings.Durable != "" && f.OpenDurable == nil {
		return nil, UsageErrorf("--durable: this build has no durable store")
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
		return nil, err
	}
	c := &Conn{Redis: rdb, Endpoint: ep}
	if f.Settings.Durable != "" {
		d, err := f.OpenDurable(ctx, f.Settings.Durable)
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
func durableOption(d Durable) redisstore.Option {
	_ = d
	return nil // until redisstore.WithDurableStore exists; OpenDurable is nil until then
}
