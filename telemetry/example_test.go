package telemetry_test

import (
	"context"
	"log"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
	"github.com/tokencache/tokencache/telemetry"
	"github.com/tokencache/tokencache/telemetry/stdout"
)

// Wiring a store and a refresher to telemetry, with the metrics printed
// when the program ends. A real service passes its own SDK providers to
// WithMeterProvider and WithTracerProvider, or installs them globally and
// passes neither.
func Example() {
	mp, flush := stdout.Metrics(os.Stdout)
	defer func() {
		if err := flush(context.Background()); err != nil {
			log.Print(err)
		}
	}()
	tel := telemetry.New(telemetry.WithMeterProvider(mp))

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	// go-redis's own spans, never with command arguments.
	if err := telemetry.InstrumentRedis(rdb, telemetry.WithMeterProvider(mp), telemetry.WithRedisMetrics()); err != nil {
		log.Fatal(err)
	}
	store := redisstore.New(rdb, redisstore.WithObserver(tel))
	locker := lock.New(rdb)
	defer locker.Close()
	r := refresher.New(store, locker, refresher.NewHTTPEndpoint(refresher.ZohoUS), refresher.WithObserver(tel))
	defer r.Close()
	_ = r // r.Token(ctx, query) …
}
