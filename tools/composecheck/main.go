// Command composecheck checks Compose files without a Docker engine. It
// loads them with compose-go, the library Docker Compose itself loads them
// with, so the file is checked against the Compose specification's JSON
// schema, interpolated, normalised and checked for consistency (unknown
// services in depends_on, networks and volumes that are not declared, and
// so on). It then checks what the loader leaves to the engine: that every
// local file the project needs (build contexts and their Dockerfiles,
// bind-mount sources, config and secret files) exists.
//
//	composecheck [-q] FILE [FILE...]
//
// Several files are merged in order, like "docker compose -f A -f B".
// Relative paths are resolved against the directory of the first file,
// and interpolation sees no environment and no .env file, so the result
// does not depend on the machine it runs on: a ${VAR} without a default
// becomes empty, with a warning on stderr.
//
// Exit status: 0 valid, 1 invalid, 2 usage.
//
// It is a separate module so that the tokencache module does not depend on
// compose-go. CI runs, from the repository root:
//
//	cd tools/composecheck && go run . ../../docker-compose.yml && go test ./...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("composecheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quiet := fs.Bool("q", false, "print nothing on success")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: composecheck [-q] FILE [FILE...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	files := fs.Args()
	project, err := Check(ctx, files...)
	if err != nil {
		fmt.Fprintf(stderr, "composecheck: %s: invalid:\n%s\n", strings.Join(files, ", "), indent(err.Error()))
		return 1
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s: valid (project %q)\n", strings.Join(files, ", "), project.Name)
		printServices(stdout, project)
	}
	return 0
}

// Check loads the Compose files, validating them, and checks that the local
// files they refer to exist. It returns the loaded project, or an error
// describing every problem found.
func Check(ctx context.Context, files ...string) (*types.Project, error) {
	project, err := Load(ctx, files...)
	if err != nil {
		return nil, err
	}
	if problems := missingFiles(project); len(problems) > 0 {
		return project, errors.New(strings.Join(problems, "\n"))
	}
	return project, nil
}

// Load loads the Compose files with compose-go, with schema validation,
// normalisation and the consistency check on, relative paths resolved
// against the first file's directory and an empty environment.
func Load(ctx context.Context, files ...string) (*types.Project, error) {
	if len(files) == 0 {
		return nil, errors.New("no Compose file given")
	}
	for _, f := range files {
		if f == "-" {
			return nil, errors.New(`reading from stdin ("-") is not supported`)
		}
	}
	first, err := filepath.Abs(files[0])
	if err != nil {
		return nil, err
	}
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(filepath.Dir(first)),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

// missingFiles lists the local files and directories the project refers to
// that do not exist. The loader has made every path absolute.
func missingFiles(p *types.Project) []string {
	var problems []string
	need := func(what, path string, dir bool) {
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %s does not exist", what, path))
		case dir && !fi.IsDir():
			problems = append(problems, fmt.Sprintf("%s: %s is not a directory", what, path))
		case !dir && fi.IsDir():
			problems = append(problems, fmt.Sprintf("%s: %s is a directory, not a file", what, path))
		}
	}
	for _, name := range sortedKeys(p.Services) {
		s := p.Services[name]
		if b := s.Build; b != nil && isLocal(b.Context) {
			need("service "+name+": build context", b.Context, true)
			if b.DockerfileInline == "" {
				df := b.Dockerfile
				if df == "" {
					df = "Dockerfile"
				}
				if !filepath.IsAbs(df) {
					df = filepath.Join(b.Context, df)
				}
				need("service "+name+": build dockerfile", df, false)
			}
		}
		for _, v := range s.Volumes {
			// A missing bind-mount source is created by the engine as an
			// empty directory, which hides a typo; mounting a file that way
			// fails at start. Both are worth catching here.
			if v.Type == types.VolumeTypeBind && v.Source != "" && filepath.IsAbs(v.Source) {
				fi, err := os.Stat(v.Source)
				if err != nil {
					problems = append(problems, fmt.Sprintf("service %s: bind mount source %s does not exist", name, v.Source))
				} else if fi.IsDir() && looksLikeFile(v.Target) {
					problems = append(problems, fmt.Sprintf("service %s: bind mount source %s is a directory, mounted at %s", name, v.Source, v.Target))
				}
			}
		}
	}
	for _, name := range sortedKeys(p.Configs) {
		if c := p.Configs[name]; c.File != "" && !bool(c.External) {
			need("config "+name, c.File, false)
		}
	}
	for _, name := range sortedKeys(p.Secrets) {
		if s := p.Secrets[name]; s.File != "" && !bool(s.External) {
			need("secret "+name, s.File, false)
		}
	}
	return problems
}

// isLocal reports whether a build context is a local directory rather than
// a Git or HTTP URL or another named context.
func isLocal(context string) bool {
	if context == "" {
		return false
	}
	for _, prefix := range []string{"http://", "https://", "git://", "git@", "github.com/", "docker-image://", "oci-layout://", "service:", "target:"} {
		if strings.HasPrefix(context, prefix) {
			return false
		}
	}
	return filepath.IsAbs(context)
}

// looksLikeFile reports whether a mount target names a file by its
// extension, such as /etc/app/config.yaml.
func looksLikeFile(target string) bool {
	switch strings.ToLower(filepath.Ext(target)) {
	case ".yaml", ".yml", ".json", ".toml", ".conf", ".cfg", ".ini", ".properties", ".env", ".pem", ".crt", ".key":
		return true
	}
	return false
}

// printServices prints one line per service: its image or build, replicas,
// dependencies and published ports.
func printServices(w io.Writer, p *types.Project) {
	names := sortedKeys(p.Services)
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	fmt.Fprintf(w, "%d services:\n", len(names))
	for _, name := range names {
		s := p.Services[name]
		parts := []string{}
		switch {
		case s.Build != nil && s.Image != "":
			parts = append(parts, "build "+relTo(p.WorkingDir, s.Build.Context)+" as "+s.Image)
		case s.Build != nil:
			parts = append(parts, "build "+relTo(p.WorkingDir, s.Build.Context))
		default:
			parts = append(parts, "image "+s.Image)
		}
		if n := s.GetScale(); n != 1 {
			parts = append(parts, fmt.Sprintf("replicas %d", n))
		}
		if len(s.DependsOn) > 0 {
			var deps []string
			for _, d := range sortedKeys(s.DependsOn) {
				deps = append(deps, d+" ("+s.DependsOn[d].Condition+")")
			}
			parts = append(parts, "depends on "+strings.Join(deps, ", "))
		}
		var ports []string
		for _, pc := range s.Ports {
			if pc.Published != "" {
				host := pc.HostIP
				if host != "" {
					host += ":"
				}
				ports = append(ports, fmt.Sprintf("%s%s->%d", host, pc.Published, pc.Target))
			}
		}
		if len(ports) > 0 {
			parts = append(parts, "ports "+strings.Join(ports, ", "))
		}
		if s.HealthCheck != nil && !s.HealthCheck.Disable && len(s.HealthCheck.Test) > 0 {
			parts = append(parts, "healthcheck")
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, name, strings.Join(parts, "; "))
	}
}

func relTo(base, path string) string {
	if rel, err := filepath.Rel(base, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
