package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const repoCompose = "../../docker-compose.yml"

// TestRepositoryComposeFile validates the repository's docker-compose.yml
// and checks the shape the README and deploy/README.md describe.
func TestRepositoryComposeFile(t *testing.T) {
	p, err := Check(context.Background(), repoCompose)
	if err != nil {
		t.Fatalf("%s: %v", repoCompose, err)
	}
	for _, name := range []string{"redis", "oauth", "worker", "otel-collector", "jaeger"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no service %q", name)
		}
	}
	w := p.Services["worker"]
	if got := w.GetScale(); got != 3 {
		t.Errorf("worker replicas = %d, want 3", got)
	}
	if got := w.DependsOn["redis"].Condition; got != "service_healthy" {
		t.Errorf("worker depends on redis with condition %q, want service_healthy", got)
	}
	if r := p.Services["redis"]; r.HealthCheck == nil || len(r.HealthCheck.Test) == 0 {
		t.Error("redis has no healthcheck")
	}
	// The workers' OTLP endpoint must name a service of the project.
	ep := w.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
	if ep == nil {
		t.Fatal("worker has no OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	u, err := url.Parse(*ep)
	if err != nil {
		t.Fatalf("OTEL_EXPORTER_OTLP_ENDPOINT %q: %v", *ep, err)
	}
	if _, ok := p.Services[u.Hostname()]; !ok {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %q names no service", *ep)
	}
	// Every image tag is pinned to a release: no "latest", no bare major.
	for name, s := range p.Services {
		if s.Image == "" || s.Build != nil {
			continue
		}
		_, tag, _ := strings.Cut(s.Image[strings.LastIndex(s.Image, "/")+1:], ":")
		if strings.Count(strings.TrimPrefix(tag, "v"), ".") < 2 && !strings.Contains(s.Image, "@sha256:") {
			t.Errorf("service %s: image %q is not pinned to a release (want x.y.z)", name, s.Image)
		}
	}
	// oauth and worker are probed by the binary itself, and Prometheus
	// scrapes the workers' metrics address.
	for _, name := range []string{"oauth", "worker"} {
		hc := p.Services[name].HealthCheck
		if hc == nil || !strings.Contains(strings.Join(hc.Test, " "), "tokencache healthcheck") {
			t.Errorf("%s has no tokencache healthcheck: %+v", name, hc)
		}
	}
	if got := w.DependsOn["oauth"].Condition; got != "service_healthy" {
		t.Errorf("worker depends on oauth with condition %q, want service_healthy", got)
	}
	if _, ok := p.Services["prometheus"]; !ok {
		t.Error("no prometheus service")
	}
	// The worker talks to the oauth service and serves its metrics.
	cmd := strings.Join(w.Command, " ")
	for _, want := range []string{"worker", "redis://redis:6379", "http://oauth:8080/oauth/v2/token", "--metrics-addr=:9464"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("worker command %q lacks %q", cmd, want)
		}
	}
}

// TestRejects checks that broken Compose documents are refused, each for
// the reason expected.
func TestRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // a part of the error message
	}{
		{
			name: "unknown top-level key",
			yaml: "services:\n  a:\n    image: redis:7\nservise:\n  b:\n    image: redis:7\n",
			want: "additional properties 'servise' not allowed",
		},
		{
			name: "unknown service key",
			yaml: "services:\n  a:\n    imgae: redis:7\n",
			want: "services.a.imgae",
		},
		{
			name: "replicas not a number",
			yaml: "services:\n  a:\n    image: redis:7\n    deploy:\n      replicas: three\n",
			want: "replicas",
		},
		{
			name: "service is a list",
			yaml: "services:\n  a:\n    - image: redis:7\n",
			want: "services.a must be a mapping",
		},
		{
			name: "healthcheck interval not a duration",
			yaml: "services:\n  a:\n    image: redis:7\n    healthcheck:\n      test: [CMD, true]\n      interval: soon\n",
			want: "interval",
		},
		{
			name: "depends on an undefined service",
			yaml: "services:\n  a:\n    image: redis:7\n    depends_on:\n      db:\n        condition: service_healthy\n",
			want: `depends on undefined service "db"`,
		},
		{
			name: "undefined named volume",
			yaml: "services:\n  a:\n    image: redis:7\n    volumes:\n      - data:/data\n",
			want: "undefined volume",
		},
		{
			name: "missing bind-mount source",
			yaml: "services:\n  a:\n    image: redis:7\n    volumes:\n      - ./missing.yaml:/etc/a/config.yaml:ro\n",
			want: "missing.yaml does not exist",
		},
		{
			name: "missing build context",
			yaml: "services:\n  a:\n    build: ./nowhere\n",
			want: "build context",
		},
		{
			name: "no image and no build",
			yaml: "services:\n  a:\n    command: [run]\n",
			want: "neither an image nor a build context",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "compose.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Check(context.Background(), path)
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.yaml)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// TestRun checks the command's output and exit status.
func TestRun(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(broken, []byte("servicez: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		emptyOut   bool
		emptyError bool
	}{
		{name: "valid", args: []string{repoCompose}, code: 0, stdout: "valid (project \"tokencache\")", emptyError: true},
		{name: "quiet", args: []string{"-q", repoCompose}, code: 0, emptyOut: true, emptyError: true},
		{name: "invalid", args: []string{broken}, code: 1, stderr: "invalid", emptyOut: true},
		{name: "missing file", args: []string{filepath.Join(t.TempDir(), "nope.yml")}, code: 1, stderr: "nope.yml", emptyOut: true},
		{name: "no file", args: nil, code: 2, stderr: "usage: composecheck", emptyOut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q lacks %q", &stdout, tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", &stderr, tt.stderr)
			}
			if tt.emptyOut && stdout.Len() > 0 {
				t.Errorf("stdout not empty: %q", &stdout)
			}
			if tt.emptyError && stderr.Len() > 0 {
				t.Errorf("stderr not empty: %q", &stderr)
			}
		})
	}
}
