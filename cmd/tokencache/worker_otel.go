package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
	"github.com/tokencache/tokencache/telemetry"
	"github.com/tokencache/tokencache/telemetry/stdout"
)

// Values of the --otel flag of worker and demo.
const (
	otelNone   = "none"   // no telemetry
	otelStdout = "stdout" // metrics printed as text when the process ends
	otelOTLP   = "otlp"   // traces (tokencache's and go-redis's spans) over OTLP/HTTP
)

// defaultWorkerOTel is "otlp" when the standard OpenTelemetry environment
// names a collector, as docker-compose.yml does, else "none".
func defaultWorkerOTel() string {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		return otelOTLP
	}
	return otelNone
}

// workerTelemetry is what a worker process reports with.
type workerTelemetry struct {
	tel   *telemetry.Telemetry            // nil: nothing is recorded
	flush func(ctx context.Context) error // prints or sends what is left, and stops; never nil
}

// newWorkerTelemetry sets up the telemetry mode asks for: for "stdout",
// flush writes the metrics to metricsOut; for "otlp", spans go to the
// collector that the OTEL_EXPORTER_OTLP_* variables name (default
// http://localhost:4318), with the service name of OTEL_SERVICE_NAME, and
// rdb's commands become spans too (without their arguments). Metrics are
// not sent over OTLP: this build has no OTLP metric exporter.
func newWorkerTelemetry(ctx context.Context, mode string, metricsOut io.Writer, rdb redis.UniversalClient) (*workerTelemetry, error) {
	switch mode {
	case otelNone:
		return &workerTelemetry{flush: func(context.Context) error { return nil }}, nil
	case otelStdout:
		mp, flush := stdout.Metrics(metricsOut)
		return &workerTelemetry{tel: telemetry.New(telemetry.WithMeterProvider(mp)), flush: flush}, nil
	case otelOTLP:
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("--otel otlp: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
		if err := telemetry.InstrumentRedis(rdb, telemetry.WithTracerProvider(tp)); err != nil {
			_ = tp.Shutdown(ctx)
			return nil, err
		}
		return &workerTelemetry{tel: telemetry.New(telemetry.WithTracerProvider(tp)), flush: tp.Shutdown}, nil
	default:
		return nil, fmt.Errorf("--otel %q: want %s, %s or %s", mode, otelNone, otelStdout, otelOTLP)
	}
}

func (w *workerTelemetry) storeOptions() []redisstore.Option {
	if w.tel == nil {
		return nil
	}
	return []redisstore.Option{redisstore.WithObserver(w.tel)}
}

func (w *workerTelemetry) refresherOptions() []refresher.Option {
	if w.tel == nil {
		return nil
	}
	return []refresher.Option{refresher.WithObserver(w.tel)}
}
