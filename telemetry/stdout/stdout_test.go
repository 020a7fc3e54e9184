package stdout_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
	"github.com/tokencache/tokencache/telemetry"
	"github.com/tokencache/tokencache/telemetry/stdout"
)

func TestMetricsPrintsEveryMetric(t *testing.T) {
	var buf bytes.Buffer
	mp, flush := stdout.Metrics(&buf)
	tel := telemetry.New(telemetry.WithMeterProvider(mp))
	ctx := context.Background()
	for range 3 {
		_, done := tel.TokenCall(ctx)
		done(refresher.ResultFresh, nil)
	}
	_, done := tel.RefreshCall(ctx, "abc", false)
	done(refresher.OutcomeInvalidGrant, refresher.ErrInvalidGrant)
	tel.LockWait(ctx, 250*time.Millisecond)
	tel.LockWait(ctx, 750*time.Millisecond)
	_, sdone := tel.StoreOperation(ctx, redisstore.OpFindTokenByID)
	sdone(errors.New("redis down"))

	if err := flush(ctx); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"tokencache.token.requests{result=fresh}  3\n",
		"tokencache.refreshes{outcome=invalid_grant}  1\n",
		"tokencache.refresh.duration{outcome=invalid_grant}  count=1 mean=",
		"tokencache.lock.wait.duration  count=2 mean=500ms min=250ms max=750ms\n",
		"tokencache.store.duration{operation=find_token_by_id,outcome=error}  count=1 mean=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Errorf("%d lines, want 5:\n%s", len(lines), out)
	}

	// After flush the provider is shut down: a second flush fails and
	// prints nothing.
	buf.Reset()
	if err := flush(ctx); err == nil {
		t.Error("second flush succeeded")
	}
	if buf.Len() != 0 {
		t.Errorf("second flush printed %q", buf.String())
	}
}

func TestMetricsWithNothingRecorded(t *testing.T) {
	var buf bytes.Buffer
	_, flush := stdout.Metrics(&buf)
	if err := flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "no metrics recorded\n" {
		t.Errorf("output %q", got)
	}
}
