package telemetry

import (
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
)

// WithRedisMetrics makes InstrumentRedis turn on go-redis's own metrics too
// (connection pool usage and command durations, named db.client.*), through
// the provider of WithMeterProvider or the global one. New ignores it.
func WithRedisMetrics() Option {
	return func(c *config) { c.redisMetrics = true }
}

// InstrumentRedis turns on go-redis's own OpenTelemetry tracing of rdb,
// the documented way (redisotel.InstrumentTracing), with the provider of
// WithTracerProvider or the global one, so that the Redis commands of a
// Store or a Locker appear as children of the tokencache spans. With
// WithRedisMetrics it turns on go-redis's metrics as well.
//
// It switches off redisotel's db.statement attribute
// (redisotel.WithDBStatement(false)), which by default holds every command
// with all its arguments. tokencache's commands carry secrets as
// arguments: the fields of a token hash (access, refresh and grant tokens,
// client secret, user name) in the save script, and the lock's fencing
// token in the lock, extend and release scripts. With the statement off a
// span keeps the command's name, the server address and the timing, and no
// argument. redisotel's default filter, which leaves AUTH out, stays on.
//
// Call it once per client, before the client is used by several
// goroutines: every call adds another hook, hence another span per
// command. It works on *redis.Client (standalone or Sentinel),
// *redis.ClusterClient and *redis.Ring.
func InstrumentRedis(rdb redis.UniversalClient, opts ...Option) error {
	if rdb == nil {
		return fmt.Errorf("telemetry: InstrumentRedis: nil Redis client")
	}
	c := newConfig(opts)
	if err := redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(c.tp),
		redisotel.WithDBStatement(false),
	); err != nil {
		return fmt.Errorf("telemetry: InstrumentRedis: %w", err)
	}
	if c.redisMetrics {
		if err := redisotel.InstrumentMetrics(rdb, redisotel.WithMeterProvider(c.mp)); err != nil {
			return fmt.Errorf("telemetry: InstrumentRedis metrics: %w", err)
		}
	}
	return nil
}
