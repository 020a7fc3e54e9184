// Package telemetry reports what tokencache does as OpenTelemetry metrics
// and traces. It is the only package of the module that imports
// OpenTelemetry: redisstore and refresher only know small Observer
// interfaces, which a *Telemetry implements.
//
//	tel := telemetry.New() // the global providers; see WithMeterProvider, WithTracerProvider
//	store := redisstore.New(rdb, redisstore.WithObserver(tel))
//	r := refresher.New(store, locker, ep, refresher.WithObserver(tel))
//	_ = telemetry.InstrumentRedis(rdb) // go-redis's own spans, without command arguments
//
// # Metrics
//
// Every name starts with "tokencache.", and the attribute values are the
// fixed words listed here:
//
//	tokencache.token.requests      counter    Token calls, by result: fresh,
//	                                          stale_served, refreshed, waited,
//	                                          error (see refresher.Result)
//	tokencache.refreshes           counter    Endpoint calls of this process,
//	                                          by outcome: ok, invalid_grant, error
//	tokencache.refresh.duration    histogram  seconds per Endpoint call, by outcome
//	tokencache.lock.wait.duration  histogram  seconds a Token caller waited for a
//	                                          refresh made by another goroutine or
//	                                          worker
//	tokencache.store.duration      histogram  seconds per Store call, by operation
//	                                          (find_token, save_token, …; see the
//	                                          redisstore Op constants) and outcome:
//	                                          ok, not_found, conflict, invalid, error
//	tokencache.refresher.events    counter    what a Refresher did to get through a
//	                                          fault, by event: store_fallback,
//	                                          store_timeout (a caller got the token
//	                                          this process remembered), save_retry,
//	                                          save_landed, save_lost, flight_wait,
//	                                          background_error (see refresher.Event)
//
// # Traces
//
// Spans are named tokencache.Token (a Refresher.Token call),
// tokencache.refresh (an Endpoint call; a child of the Token call it serves,
// or of the one that started a background renewal) and
// tokencache.store.<operation> (a Store call). Their attributes are the
// result or outcome, the operation, the kind of Endpoint call and the token
// ID, which is a random identifier and not a secret. No span attribute and
// no metric attribute ever holds a token, a client secret or a user name
// (personal data): the Observer interfaces are never given them. A cache
// miss (tokencache.ErrNotFound) is not a span error; any other error sets
// the span's status to Error with the error's message, which in this module
// never carries a secret (an Endpoint of your own must keep to that too).
package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

// ScopeName is the instrumentation scope of the meter and the tracer: the
// import path of this package.
const ScopeName = "github.com/tokencache/tokencache/telemetry"

// Metric names.
const (
	MetricTokenRequests   = "tokencache.token.requests"
	MetricRefreshes       = "tokencache.refreshes"
	MetricRefreshDuration = "tokencache.refresh.duration"
	MetricLockWait        = "tokencache.lock.wait.duration"
	MetricStoreDuration   = "tokencache.store.duration"
	MetricEvents          = "tokencache.refresher.events"
)

// Span names. A Store call's span is SpanStorePrefix followed by the
// operation, such as "tokencache.store.find_token".
const (
	SpanToken       = "tokencache.Token"
	SpanRefresh     = "tokencache.refresh"
	SpanStorePrefix = "tokencache.store."
)

// Attribute keys. Metrics use the short keys; spans use the
// "tokencache."-prefixed ones, so that they do not collide with other
// instrumentations' attributes.
const (
	keyResult    = "result"
	keyOutcome   = "outcome"
	keyOperation = "operation"
	keyEvent     = "event"

	spanKeyResult      = "tokencache.result"
	spanKeyOutcome     = "tokencache.outcome"
	spanKeyOperation   = "tokencache.store.operation"
	spanKeyTokenID     = "tokencache.token.id"
	spanKeyRefreshKind = "tokencache.refresh.kind"
	spanKeyEvent       = "tokencache.event"
	spanKeyError       = "tokencache.error"
)

// SpanEventPrefix starts the name of the span event a refresher.Event adds
// to the current span, such as "tokencache.store_fallback".
const SpanEventPrefix = "tokencache."

// Outcomes of a Store call, the values of the "outcome" attribute of
// tokencache.store.duration.
const (
	StoreOK       = "ok"
	StoreNotFound = "not_found" // tokencache.ErrNotFound
	StoreConflict = "conflict"  // tokencache.ErrConflict
	StoreInvalid  = "invalid"   // tokencache.ErrInvalidToken: bad input
	StoreError    = "error"     // anything else: Redis, the network, a bad option
)

// Histogram bucket boundaries, in seconds. The SDK's default boundaries
// (0, 5, 10, 25 … 10000) suit milliseconds and would put every one of
// these durations in the first two buckets.
var (
	storeBuckets   = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	refreshBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	waitBuckets    = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)

// Option configures New and InstrumentRedis.
type Option func(*config)

type config struct {
	tp           trace.TracerProvider
	mp           metric.MeterProvider
	redisMetrics bool
}

func newConfig(opts []Option) config {
	var c config
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	// The global providers do nothing until the application installs an
	// SDK; a library never installs one itself.
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	return c
}

// WithTracerProvider makes spans with tp instead of the global
// otel.GetTracerProvider(). A nil tp is ignored.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithMeterProvider records metrics with mp instead of the global
// otel.GetMeterProvider(). A nil mp is ignored.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

// Telemetry turns the reports of redisstore and refresher into metrics and
// spans: it implements redisstore.Observer and refresher.Observer, so pass
// it to redisstore.WithObserver and refresher.WithObserver. It is safe for
// concurrent use, and one Telemetry may serve many stores and refreshers.
// Its methods are the hooks those packages call; applications do not call
// them.
type Telemetry struct {
	tracer trace.Tracer

	requests        metric.Int64Counter
	refreshes       metric.Int64Counter
	refreshDuration metric.Float64Histogram
	lockWait        metric.Float64Histogram
	storeDuration   metric.Float64Histogram
	events          metric.Int64Counter

	// Attribute sets made once, so that a measurement allocates none.
	resultAttrs  map[refresher.Result]metric.MeasurementOption
	outcomeAttrs map[refresher.Outcome]metric.MeasurementOption
	eventAttrs   map[refresher.Event]metric.MeasurementOption
	storeAttrs   map[storeKey]metric.MeasurementOption
	storeSpans   map[string]storeSpan
}

type storeKey struct{ op, outcome string }

// storeSpan is what a Store call's span starts with.
type storeSpan struct {
	name string
	opts []trace.SpanStartOption
}

var (
	_ redisstore.Observer     = (*Telemetry)(nil)
	_ refresher.Observer      = (*Telemetry)(nil)
	_ refresher.EventObserver = (*Telemetry)(nil)
)

// New returns a Telemetry that records with the global providers, or the
// ones WithMeterProvider and WithTracerProvider give. It never fails: an
// instrument the meter refuses is reported to otel.Handle and replaced by
// one that does nothing.
func New(opts ...Option) *Telemetry {
	c := newConfig(opts)
	meter := c.mp.Meter(ScopeName)
	t := &Telemetry{
		tracer: c.tp.Tracer(ScopeName),
		requests: counter(meter, MetricTokenRequests, "{request}",
			"Refresher.Token calls, by result: fresh, stale_served, refreshed, waited or error."),
		refreshes: counter(meter, MetricRefreshes, "{refresh}",
			"Calls of this process to the OAuth token endpoint, by outcome: ok, invalid_grant or error."),
		refreshDuration: histogram(meter, MetricRefreshDuration, refreshBuckets,
			"How long a call to the OAuth token endpoint took, by outcome."),
		lockWait: histogram(meter, MetricLockWait, waitBuckets,
			"How long a Token caller waited for a refresh made by another goroutine or worker."),
		storeDuration: histogram(meter, MetricStoreDuration, storeBuckets,
			"How long a token store call took, by operation and outcome."),
		events: counter(meter, MetricEvents, "{event}",
			"What a Refresher did to get through a fault, by event: store_fallback, store_timeout, save_retry, save_landed, save_lost, flight_wait or background_error."),
		eventAttrs:   make(map[refresher.Event]metric.MeasurementOption),
		resultAttrs:  make(map[refresher.Result]metric.MeasurementOption),
		outcomeAttrs: make(map[refresher.Outcome]metric.MeasurementOption),
		storeAttrs:   make(map[storeKey]metric.MeasurementOption),
		storeSpans:   make(map[string]storeSpan),
	}
	for _, r := range []refresher.Result{refresher.ResultFresh, refresher.ResultStaleServed, refresher.ResultRefreshed, refresher.ResultWaited, refresher.ResultError} {
		t.resultAttrs[r] = resultSet(r)
	}
	for _, e := range []refresher.Event{refresher.EventStoreFallback, refresher.EventStoreTimeout, refresher.EventSaveRetry,
		refresher.EventSaveLanded, refresher.EventSaveLost, refresher.EventFlightWait, refresher.EventBackgroundError} {
		t.eventAttrs[e] = eventSet(e)
	}
	for _, o := range []refresher.Outcome{refresher.OutcomeOK, refresher.OutcomeInvalidGrant, refresher.OutcomeError} {
		t.outcomeAttrs[o] = outcomeSet(o)
	}
	for _, op := range []string{redisstore.OpFindToken, redisstore.OpFindTokenByID, redisstore.OpSaveToken,
		redisstore.OpSaveTokenIfLocked, redisstore.OpDeleteToken, redisstore.OpGetTokens, redisstore.OpDeleteTokens} {
		t.storeSpans[op] = newStoreSpan(op)
		for _, outcome := range []string{StoreOK, StoreNotFound, StoreConflict, StoreInvalid, StoreError} {
			t.storeAttrs[storeKey{op, outcome}] = storeSet(op, outcome)
		}
	}
	return t
}

func counter(m metric.Meter, name, unit, desc string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	if err != nil {
		otel.Handle(err)
	}
	if c == nil {
		c, _ = metricnoop.Meter{}.Int64Counter(name)
	}
	return c
}

func histogram(m metric.Meter, name string, buckets []float64, desc string) metric.Float64Histogram {
	h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(buckets...))
	if err != nil {
		otel.Handle(err)
	}
	if h == nil {
		h, _ = metricnoop.Meter{}.Float64Histogram(name)
	}
	return h
}

func resultSet(r refresher.Result) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String(keyResult, string(r))))
}

func outcomeSet(o refresher.Outcome) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String(keyOutcome, string(o))))
}

func eventSet(e refresher.Event) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String(keyEvent, string(e))))
}

func storeSet(op, outcome string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String(keyOperation, op), attribute.String(keyOutcome, outcome)))
}

func newStoreSpan(op string) storeSpan {
	return storeSpan{
		name: SpanStorePrefix + op,
		opts: []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(attribute.String(spanKeyOperation, op)),
		},
	}
}

// StoreOperation implements redisstore.Observer: a span around the call and
// its duration in tokencache.store.duration.
func (t *Telemetry) StoreOperation(ctx context.Context, op string) (context.Context, func(err error)) {
	if t == nil {
		return ctx, func(error) {}
	}
	start := time.Now()
	sp, ok := t.storeSpans[op]
	if !ok {
		sp = newStoreSpan(op)
	}
	ctx, span := t.tracer.Start(ctx, sp.name, sp.opts...)
	return ctx, func(err error) {
		outcome := storeOutcome(err)
		set, ok := t.storeAttrs[storeKey{op, outcome}]
		if !ok {
			set = storeSet(op, outcome)
		}
		t.storeDuration.Record(ctx, time.Since(start).Seconds(), set)
		span.SetAttributes(attribute.String(spanKeyOutcome, outcome))
		if outcome != StoreOK && outcome != StoreNotFound {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// storeOutcome classifies a Store call's error.
func storeOutcome(err error) string {
	switch {
	case err == nil:
		return StoreOK
	case errors.Is(err, tokencache.ErrNotFound):
		return StoreNotFound
	case errors.Is(err, tokencache.ErrConflict):
		return StoreConflict
	case errors.Is(err, tokencache.ErrInvalidToken):
		return StoreInvalid
	default:
		return StoreError
	}
}

// TokenCall implements refresher.Observer: the tokencache.Token span and
// tokencache.token.requests.
func (t *Telemetry) TokenCall(ctx context.Context) (context.Context, func(refresher.Result, error)) {
	if t == nil {
		return ctx, func(refresher.Result, error) {}
	}
	ctx, span := t.tracer.Start(ctx, SpanToken, trace.WithSpanKind(trace.SpanKindInternal))
	return ctx, func(result refresher.Result, err error) {
		set, ok := t.resultAttrs[result]
		if !ok {
			set = resultSet(result)
		}
		t.requests.Add(ctx, 1, set)
		span.SetAttributes(attribute.String(spanKeyResult, string(result)))
		// A query that matches no token and cannot make one is a miss:
		// the user has to log in, nothing failed.
		if err != nil && !errors.Is(err, tokencache.ErrNotFound) {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// RefreshCall implements refresher.Observer: the tokencache.refresh span,
// tokencache.refreshes and tokencache.refresh.duration.
func (t *Telemetry) RefreshCall(ctx context.Context, id string, exchange bool) (context.Context, func(refresher.Outcome, error)) {
	if t == nil {
		return ctx, func(refresher.Outcome, error) {}
	}
	start := time.Now()
	kind := "refresh"
	if exchange {
		kind = "exchange"
	}
	attrs := make([]attribute.KeyValue, 1, 2)
	attrs[0] = attribute.String(spanKeyRefreshKind, kind)
	// Only a well-formed ID goes in: whatever else a caller put there is
	// request data.
	if id != "" && tokencache.ValidateID(id) == nil {
		attrs = append(attrs, attribute.String(spanKeyTokenID, id))
	}
	ctx, span := t.tracer.Start(ctx, SpanRefresh, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	return ctx, func(outcome refresher.Outcome, err error) {
		set, ok := t.outcomeAttrs[outcome]
		if !ok {
			set = outcomeSet(outcome)
		}
		t.refreshes.Add(ctx, 1, set)
		t.refreshDuration.Record(ctx, time.Since(start).Seconds(), set)
		span.SetAttributes(attribute.String(spanKeyOutcome, string(outcome)))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// LockWait implements refresher.Observer: tokencache.lock.wait.duration.
func (t *Telemetry) LockWait(ctx context.Context, waited time.Duration) {
	if t == nil {
		return
	}
	t.lockWait.Record(ctx, waited.Seconds())
}

// Event implements refresher.EventObserver: tokencache.refresher.events,
// and an event named after it on the current span, if any. The cause's
// message goes on the span event only (it never carries a secret).
func (t *Telemetry) Event(ctx context.Context, e refresher.Event, err error) {
	if t == nil {
		return
	}
	set, ok := t.eventAttrs[e]
	if !ok {
		set = eventSet(e)
	}
	t.events.Add(ctx, 1, set)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{attribute.String(spanKeyEvent, string(e))}
		if err != nil {
			attrs = append(attrs, attribute.String(spanKeyError, err.Error()))
		}
		span.AddEvent(SpanEventPrefix+string(e), trace.WithAttributes(attrs...))
	}
}
