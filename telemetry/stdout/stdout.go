// Package stdout prints tokencache's metrics as text, for demos and
// debugging sessions:
//
//	mp, flush := stdout.Metrics(os.Stdout)
//	tel := telemetry.New(telemetry.WithMeterProvider(mp))
//	// … use tel with redisstore.WithObserver and refresher.WithObserver …
//	defer flush(context.Background()) // prints every metric, then stops recording
//
// It is a package of its own because it builds an OpenTelemetry SDK, which
// a library must not pull into the programs that import it: package
// telemetry itself depends on the OpenTelemetry API only. An application
// that exports telemetry for real builds its SDK providers itself and
// passes them to telemetry.WithMeterProvider and WithTracerProvider.
package stdout

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Metrics returns a MeterProvider that keeps what it measures in memory,
// and flush, which writes all of it to w, one line per metric and
// attribute set in name order, and then shuts the provider down: call it
// once, at the end. Histograms print their count, mean, min and max;
// durations print as Go durations. Nothing is exported anywhere else.
func Metrics(w io.Writer) (_ metric.MeterProvider, flush func(context.Context) error) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	return mp, func(ctx context.Context) error {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			return fmt.Errorf("stdout: collecting metrics: %w", err)
		}
		_, err := io.WriteString(w, Format(&rm))
		if serr := mp.Shutdown(ctx); err == nil {
			err = serr
		}
		return err
	}
}

// Format renders collected metrics the way Metrics prints them.
func Format(rm *metricdata.ResourceMetrics) string {
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			lines = append(lines, formatMetric(m)...)
		}
	}
	if len(lines) == 0 {
		return "no metrics recorded\n"
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func formatMetric(m metricdata.Metrics) []string {
	switch data := m.Data.(type) {
	case metricdata.Sum[int64]:
		return points(m, data.DataPoints)
	case metricdata.Sum[float64]:
		return points(m, data.DataPoints)
	case metricdata.Gauge[int64]:
		return points(m, data.DataPoints)
	case metricdata.Gauge[float64]:
		return points(m, data.DataPoints)
	case metricdata.Histogram[int64]:
		return histogramPoints(m, data.DataPoints)
	case metricdata.Histogram[float64]:
		return histogramPoints(m, data.DataPoints)
	default:
		return []string{fmt.Sprintf("%s  (%T not shown)", m.Name, m.Data)}
	}
}

func points[N int64 | float64](m metricdata.Metrics, dps []metricdata.DataPoint[N]) []string {
	out := make([]string, 0, len(dps))
	for _, dp := range dps {
		out = append(out, fmt.Sprintf("%s%s  %s", m.Name, attrs(dp.Attributes.ToSlice()), value(float64(dp.Value), m.Unit)))
	}
	return out
}

func histogramPoints[N int64 | float64](m metricdata.Metrics, dps []metricdata.HistogramDataPoint[N]) []string {
	out := make([]string, 0, len(dps))
	for _, dp := range dps {
		line := fmt.Sprintf("%s%s  count=%d", m.Name, attrs(dp.Attributes.ToSlice()), dp.Count)
		if dp.Count > 0 {
			line += " mean=" + value(float64(dp.Sum)/float64(dp.Count), m.Unit)
		}
		if v, ok := dp.Min.Value(); ok {
			line += " min=" + value(float64(v), m.Unit)
		}
		if v, ok := dp.Max.Value(); ok {
			line += " max=" + value(float64(v), m.Unit)
		}
		out = append(out, line)
	}
	return out
}

// attrs renders an attribute list as {key=value,…}, or nothing when empty.
func attrs(kvs []attribute.KeyValue) string {
	if len(kvs) == 0 {
		return ""
	}
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = string(kv.Key) + "=" + kv.Value.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// value renders v in unit: durations as Go durations, anything else as a
// number followed by the unit, unless the unit is an annotation such as
// "{request}".
func value(v float64, unit string) string {
	switch unit {
	case "s":
		return duration(v * float64(time.Second))
	case "ms":
		return duration(v * float64(time.Millisecond))
	}
	s := strconv.FormatFloat(v, 'g', 6, 64)
	if unit != "" && unit != "1" && !strings.HasPrefix(unit, "{") {
		s += unit
	}
	return s
}

func duration(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		d = d.Round(time.Millisecond)
	case d >= time.Millisecond:
		d = d.Round(10 * time.Microsecond)
	default:
		d = d.Round(time.Microsecond)
	}
	return d.String()
}
