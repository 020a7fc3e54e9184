package main

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// collectorConfig is the part of an OpenTelemetry Collector configuration
// that wires components into pipelines.
type collectorConfig struct {
	Receivers  map[string]any `yaml:"receivers"`
	Processors map[string]any `yaml:"processors"`
	Exporters  map[string]any `yaml:"exporters"`
	Extensions map[string]any `yaml:"extensions"`
	Service    struct {
		Extensions []string `yaml:"extensions"`
		Pipelines  map[string]struct {
			Receivers  []string `yaml:"receivers"`
			Processors []string `yaml:"processors"`
			Exporters  []string `yaml:"exporters"`
		} `yaml:"pipelines"`
	} `yaml:"service"`
}

// TestCollectorConfig checks deploy/otel-collector.yaml for what the
// collector would refuse at start: a pipeline naming a component that is
// not defined. It also checks that the workers' OTLP endpoint is a port the
// collector listens on. (The components' own settings are checked only by
// the collector itself.)
func TestCollectorConfig(t *testing.T) {
	b, err := os.ReadFile("../../deploy/otel-collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c collectorConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Service.Pipelines) == 0 {
		t.Fatal("no pipelines")
	}
	if _, ok := c.Service.Pipelines["traces"]; !ok {
		t.Error("no traces pipeline")
	}
	check := func(where, kind string, names []string, defined map[string]any) {
		if len(names) == 0 && kind != "processor" {
			t.Errorf("%s: no %ss", where, kind)
		}
		for _, n := range names {
			if _, ok := defined[n]; !ok {
				t.Errorf("%s: %s %q is not defined", where, kind, n)
			}
		}
	}
	for name, p := range c.Service.Pipelines {
		check("pipeline "+name, "receiver", p.Receivers, c.Receivers)
		check("pipeline "+name, "processor", p.Processors, c.Processors)
		check("pipeline "+name, "exporter", p.Exporters, c.Exporters)
	}
	for _, n := range c.Service.Extensions {
		if _, ok := c.Extensions[n]; !ok {
			t.Errorf("extension %q is not defined", n)
		}
	}

	p, err := Check(context.Background(), repoCompose)
	if err != nil {
		t.Fatal(err)
	}
	ep := p.Services["worker"].Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
	if ep == nil {
		t.Fatal("worker has no OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	u, err := url.Parse(*ep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "0.0.0.0:"+u.Port()) {
		t.Errorf("the workers export to port %s, on which the collector does not listen", u.Port())
	}
}
