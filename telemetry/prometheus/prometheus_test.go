package prometheus_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
	"github.com/tokencache/tokencache/telemetry"
	"github.com/tokencache/tokencache/telemetry/prometheus"
)

// scrape records one measurement of every metric of package telemetry and
// returns the served exposition text.
func scrape(t *testing.T) string {
	t.Helper()
	mp, h, err := prometheus.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tel := telemetry.New(telemetry.WithMeterProvider(mp))
	ctx := context.Background()
	_, done := tel.TokenCall(ctx)
	done(refresher.ResultRefreshed, nil)
	_, rdone := tel.RefreshCall(ctx, "id1", false)
	rdone(refresher.OutcomeOK, nil)
	tel.LockWait(ctx, 20*time.Millisecond)
	_, sdone := tel.StoreOperation(ctx, redisstore.OpFindToken)
	sdone(errors.New("redis down"))
	tel.Event(ctx, refresher.EventSaveRetry, errors.New("redis down"))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// served returns the metric family names in an exposition text.
func served(text string) []string {
	var names []string
	for line := range strings.Lines(text) {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	return names
}

func TestNamesAreWhatIsServed(t *testing.T) {
	text := scrape(t)
	got := served(text)
	var ours []string
	for _, n := range got {
		if strings.HasPrefix(n, "tokencache_") {
			ours = append(ours, n)
		}
	}
	want := slices.Clone(prometheus.Names)
	slices.Sort(want)
	slices.Sort(ours)
	if !slices.Equal(ours, want) {
		t.Errorf("served tokencache metrics %v\nNames                 %v", ours, want)
	}
	for _, want := range []string{
		`tokencache_token_requests_total{result="refreshed"} 1`,
		`tokencache_refreshes_total{outcome="ok"} 1`,
		`tokencache_store_duration_seconds_count{operation="find_token",outcome="error"} 1`,
		`tokencache_refresher_events_total{event="save_retry"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the exposition lacks %s", want)
		}
	}
	if strings.Contains(text, "id1") {
		t.Error("a token ID became a label")
	}
}

// TestDashboardQueriesExistingMetrics: every metric the Grafana dashboard
// in deploy/ queries is one that is served, with labels that exist.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	text := scrape(t)
	series := map[string]bool{} // every served series name (with _bucket, _sum, _count)
	labels := map[string]bool{}
	for line := range strings.Lines(text) {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		series[strings.Fields(name)[0]] = true
		for _, m := range regexp.MustCompile(`(\w+)="`).FindAllStringSubmatch(rest, -1) {
			labels[m[1]] = true
		}
	}
	raw, err := os.ReadFile("../../deploy/grafana/tokencache.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	metricRE := regexp.MustCompile(`\btokencache_[a-z_]+`)
	byRE := regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcherRE := regexp.MustCompile(`\{([^}]*)\}`)
	queried := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			continue
		}
		for _, tg := range p.Targets {
			names := metricRE.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q queries no tokencache metric: %s", p.Title, tg.Expr)
			}
			for _, n := range names {
				queried++
				if !series[n] {
					t.Errorf("panel %q queries %s, which is not served", p.Title, n)
				}
			}
			for _, m := range byRE.FindAllStringSubmatch(tg.Expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					if l = strings.TrimSpace(l); l != "" && l != "le" && l != "instance" && l != "job" && !labels[l] {
						t.Errorf("panel %q groups by label %q, which no tokencache metric has", p.Title, l)
					}
				}
			}
			for _, m := range matcherRE.FindAllStringSubmatch(tg.Expr, -1) {
				for _, kv := range regexp.MustCompile(`(\w+)\s*[=!~]+`).FindAllStringSubmatch(m[1], -1) {
					if l := kv[1]; l != "le" && l != "instance" && l != "job" && !labels[l] {
						t.Errorf("panel %q matches label %q, which no tokencache metric has", p.Title, l)
					}
				}
			}
		}
	}
	if queried < len(prometheus.Names) {
		t.Errorf("the dashboard queries %d metrics; every one of %v should be on it", queried, prometheus.Names)
	}
	for _, n := range prometheus.Names {
		if !strings.Contains(string(raw), n) {
			t.Errorf("the dashboard has no panel for %s", n)
		}
	}
}
