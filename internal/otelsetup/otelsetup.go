// Package otelsetup builds the OpenTelemetry SDK that the worker and the
// demo's workers report with: nothing, metrics printed at the end, traces
// over OTLP, and, beside any of them, metrics served for Prometheus.
package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
	"github.com/tokencache/tokencache/telemetry"
	"github.com/tokencache/tokencache/telemetry/prometheus"
	"github.com/tokencache/tokencache/telemetry/stdout"
)

// Values of the --otel flag.
const (
	None   = "none"   // no traces, no printed metrics
	Stdout = "stdout" // metrics printed as text when the process ends
	OTLP   = "otlp"   // traces (tokencache's and go-redis's spans) over OTLP/HTTP
)

// DefaultMode is OTLP when the standard OpenTelemetry environment names a
// collector, as docker-compose.yml does, else None.
func DefaultMode() string {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		return OTLP
	}
	return None
}

// Config says what to build.
type Config struct {
	Mode       string    // None, Stdout or OTLP
	MetricsOut io.Writer // Stdout: where the metrics go at Flush
	Prometheus bool      // also serve metrics for Prometheus (Handler)
}

// Telemetry is what a process reports with. Its zero parts record nothing.
type Telemetry struct {
	tel     *telemetry.Telemetry // nil: nothing is recorded
	handler http.Handler         // Prometheus metrics; nil unless asked for
	flushes []func(context.Context) error
}

// New builds the telemetry of c; rdb's commands become spans in OTLP mode
// (without their arguments).
func New(ctx context.Context, c Config, rdb redis.UniversalClient) (*Telemetry, error) {
	t := &Telemetry{}
	var opts []telemetry.Option
	var mp metric.MeterProvider
	switch c.Mode {
	case None:
	case Stdout:
		p, flush := stdout.Metrics(c.MetricsOut)
		mp = p
		t.flushes = append(t.flushes, flush)
	case OTLP:
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("--otel otlp: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
		if err := telemetry.InstrumentRedis(rdb, telemetry.WithTracerProvider(tp)); err != nil {
			_ = tp.Shutdown(ctx)
			return nil, err
		}
		opts = append(opts, telemetry.WithTracerProvider(tp))
		t.flushes = append(t.flushes, tp.Shutdown)
	default:
		return nil, fmt.Errorf("--otel %q: want %s, %s or %s", c.Mode, None, Stdout, OTLP)
	}
	if c.Prometheus {
		if mp != nil {
			return nil, errors.New("--otel stdout prints the metrics; it does not go with --metrics-addr")
		}
		p, h, err := prometheus.New()
		if err != nil {
			return nil, err
		}
		mp, t.handler = p, h
		t.flushes = append(t.flushes, p.Shutdown)
	}
	if mp != nil {
		opts = append(opts, telemetry.WithMeterProvider(mp))
	}
	if len(opts) > 0 {
		t.tel = telemetry.New(opts...)
	}
	return t, nil
}

// Handler serves the Prometheus metrics; nil unless Config.Prometheus.
func (t *Telemetry) Handler() http.Handler { return t.handler }

// Flush prints or sends what is left, and stops recording.
func (t *Telemetry) Flush(ctx context.Context) error {
	var errs []error
	for _, f := range t.flushes {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// StoreOptions are the redisstore options that report to the telemetry.
func (t *Telemetry) StoreOptions() []redisstore.Option {
	if t.tel == nil {
		return nil
	}
	return []redisstore.Option{redisstore.WithObserver(t.tel)}
}

// RefresherOptions are the refresher options that report to the telemetry.
func (t *Telemetry) RefresherOptions() []refresher.Option {
	if t.tel == nil {
		return nil
	}
	return []refresher.Option{refresher.WithObserver(t.tel)}
}
