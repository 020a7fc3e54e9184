// Package prometheus serves tokencache's metrics in the Prometheus text
// format, through the OpenTelemetry Prometheus exporter:
//
//	mp, handler, err := prometheus.New()
//	tel := telemetry.New(telemetry.WithMeterProvider(mp))
//	http.Handle("/metrics", handler)
//
// A metric named tokencache.refresh.duration with unit "s" is served as
// tokencache_refresh_duration_seconds; counters get a _total suffix
// (tokencache_refreshes_total). Names lists every name the telemetry
// package's metrics are served under, for dashboards and alerts.
//
// It is a package of its own because it builds an OpenTelemetry SDK and a
// Prometheus registry, which a library must not pull into the programs that
// import package telemetry.
package prometheus

import (
	"fmt"
	"net/http"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// New returns a MeterProvider whose metrics handler serves, on a registry
// of its own (no Go runtime or process metrics of the default registry
// unless the caller adds them). Shut the provider down when done.
func New() (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := promclient.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, nil, fmt.Errorf("prometheus: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return mp, h, nil
}

// Names are the Prometheus names of the telemetry package's metrics, as
// New serves them: histograms add _bucket, _sum and _count.
var Names = []string{
	"tokencache_token_requests_total",
	"tokencache_refreshes_total",
	"tokencache_refresh_duration_seconds",
	"tokencache_lock_wait_duration_seconds",
	"tokencache_store_duration_seconds",
	"tokencache_refresher_events_total",
}
