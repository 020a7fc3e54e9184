package main

// export and import: the tokens of a namespace as JSON lines, one
// tokencache.Token per line under its json tags.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/redisstore"
)

func init() {
	register(newExportCmd)
	register(newImportCmd)
}

func newExportCmd(a *app) *cobra.Command {
	var (
		output         string
		includeSecrets bool
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the namespace's tokens as JSON lines",
		Long: `Write every live token of the namespace as JSON lines (one token per line,
sorted by user name and ID) to stdout or to --output.

Without --include-secrets the access, refresh and grant tokens and the client
secret are empty: such an export shows what is stored but cannot be imported
back (import refuses tokens without a secret). With it the export is complete,
and a file written by --output is created with mode 0600. The file is written
to a temporary name first and renamed when complete, so a failed export never
leaves a truncated file behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(_ redis.UniversalClient, store *redisstore.Store) error {
				tokens, err := store.GetTokens(cmd.Context())
				if err != nil {
					return err
				}
				sortByUserAndID(tokens)
				write := func(w io.Writer) error { return writeTokenLines(w, tokens, includeSecrets) }
				where := "stdout"
				if output == "" || output == "-" {
					err = write(a.stdout)
				} else {
					where = output
					err = writeFileAtomically(output, includeSecrets, write)
				}
				if err != nil {
					return err
				}
				note := "without secrets: not importable; add --include-secrets for a backup"
				if includeSecrets {
					note = "with secrets: keep it safe"
				}
				fmt.Fprintf(a.stderr, "exported %d tokens from namespace %s to %s (%s)\n", len(tokens), store.Namespace(), where, note)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	cmd.Flags().BoolVar(&includeSecrets, "include-secrets", false, "include access, refresh and grant tokens and client secrets")
	return cmd
}

// writeTokenLines writes one JSON token per line, its secrets emptied unless
// withSecrets.
func writeTokenLines(w io.Writer, tokens []tokencache.Token, withSecrets bool) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, t := range tokens {
		if !withSecrets {
			t.ClientSecret, t.RefreshToken, t.AccessToken, t.GrantToken = "", "", "", ""
		}
		if err := enc.Encode(t); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// writeFileAtomically writes path through a temporary file in the same
// directory, renamed over path once complete. The file is created 0600
// (os.CreateTemp's mode) and stays so when private; otherwise it becomes
// 0644.
func writeFileAtomically(path string, private bool, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if !private {
		if err := f.Chmod(0o644); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// maxImportLine is the longest input line import reads. A token's eight
// string fields may hold 64 KiB each, 512 KiB in all, and JSON escaping can
// make control characters six times longer (\u0000), so a valid token fits
// in about 3 MiB. A longer line is reported as bad and skipped; it does not
// stop the import, as it would stop a bufio.Scanner.
const maxImportLine = 4 << 20

// Progress reporting modes of import.
const (
	progressAuto  = "auto"  // live on a terminal, else lines
	progressLive  = "live"  // one line rewritten every progressTick
	progressLines = "lines" // a line every progressEvery tokens
	progressOff   = "off"
)

const (
	progressTick  = 500 * time.Millisecond
	progressEvery = 10000
)

func newImportCmd(a *app) *cobra.Command {
	var (
		workers  int
		progress string
	)
	cmd := &cobra.Command{
		Use:   "import [FILE|-]",
		Short: "Save tokens from JSON lines (an export with --include-secrets)",
		Long: `Read JSON lines, one tokencache.Token per line, from FILE or stdin ("-" or no
argument), and save each into the namespace.

Every line is checked first: it must be one JSON object with only the
fields of a token (id, user_name, client_id, client_secret, refresh_token,
access_token, grant_token, expiry, redirect_url, api_domain, version), hold
an access, refresh or grant token, keep every field within 64 KiB, have a
well-formed id if it has one, and not be an access token that has already
expired without a refresh token. A bad line is reported on stderr as
"line N: reason" (never with the values, which may be secrets) and skipped;
the other lines are imported all the same. Blank lines are ignored.

A token with an id is saved under that id: the token with that id is
replaced, or created. A token without one is matched like any save (user name
and client id, then grant, refresh or access token) and updated or created
with a new id. "version" is ignored: an import always overwrites.

Exit status: 0 when every line was imported, 1 when some lines were bad (the
good ones are imported) or when Redis failed (the import stops there and
says how far it got).

Progress goes to stderr: on a terminal a live line every half second,
otherwise a line every 10000 tokens (--progress chooses).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if workers < 1 || workers > 256 {
				return fmt.Errorf("--workers must be between 1 and 256")
			}
			switch progress {
			case progressAuto, progressLive, progressLines, progressOff:
			default:
				return fmt.Errorf("--progress must be auto, live, lines or off")
			}
			in, size, name, err := a.openImport(args)
			if err != nil {
				return err
			}
			defer in.Close()
			return a.withStore(cmd.Context(), func(_ redis.UniversalClient, store *redisstore.Store) error {
				if progress == progressAuto {
					progress = progressLines
					if isCharDevice(a.stderr) {
						progress = progressLive
					}
				}
				if name == "stdin" && isCharDevice(a.stdin) {
					fmt.Fprintln(a.stderr, "reading JSON lines from the terminal; end with Ctrl-D")
				}
				imp := &importer{
					store:    store,
					workers:  workers,
					progress: progress,
					out:      a.stderr,
					size:     size,
					every:    progressEvery,
					tick:     progressTick,
				}
				return imp.run(cmd.Context(), in, name)
			})
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 8, "how many tokens to save at once")
	cmd.Flags().StringVar(&progress, "progress", progressAuto, "progress on stderr: auto, live, lines or off")
	return cmd
}

// openImport opens the input of import and tells its size when it is a
// regular file (for a percentage), else -1.
func (a *app) openImport(args []string) (io.ReadCloser, int64, string, error) {
	if len(args) == 0 || args[0] == "-" {
		return io.NopCloser(a.stdin), -1, "stdin", nil
	}
	f, err := os.Open(args[0])
	if err != nil {
		return nil, 0, "", err
	}
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, args[0], nil
}

// isCharDevice reports whether stream (stdin or stderr) is a character
// device, such as a terminal.
func isCharDevice(stream any) bool {
	f, ok := stream.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// importer saves the tokens of one import. Its counters are updated by the
// reader and the workers at once.
type importer struct {
	store    *redisstore.Store
	workers  int
	progress string
	out      io.Writer     // stderr: bad lines, progress, the summary
	size     int64         // input bytes, or -1 when unknown
	every    int64         // lines mode: a line every this many tokens
	tick     time.Duration // live mode: how often the line is redrawn

	lines    atomic.Int64 // lines read
	bytes    atomic.Int64 // bytes read
	imported atomic.Int64
	bad      atomic.Int64

	mu        sync.Mutex // guards out and liveDrawn: bad lines and progress share stderr
	liveDrawn bool       // a live progress line is on screen and must be cleared first
}

// importJob is one good line on its way to a worker.
type importJob struct {
	line int64
	tok  tokencache.Token
}

func (im *importer) run(ctx context.Context, in io.Reader, name string) error {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan importJob, im.workers*64)
	for range im.workers {
		g.Go(func() error { return im.save(gctx, jobs) })
	}
	g.Go(func() error {
		defer close(jobs)
		return im.read(gctx, in, jobs)
	})
	stopLive := im.startLive(start)
	err := g.Wait()
	stopLive()

	elapsed := time.Since(start)
	imported, bad, lines := im.imported.Load(), im.bad.Load(), im.lines.Load()
	if err != nil {
		return fmt.Errorf("import from %s stopped after %d lines (%d tokens imported): %w", name, lines, imported, err)
	}
	rate := ""
	if secs := elapsed.Seconds(); imported > 0 && secs > 0 {
		rate = fmt.Sprintf(", %.0f tokens/s", float64(imported)/secs)
	}
	im.printf("imported %d tokens into namespace %s from %s in %s%s; %d bad lines skipped\n",
		imported, im.store.Namespace(), name, elapsed.Round(time.Millisecond), rate, bad)
	if bad > 0 {
		return fmt.Errorf("%d of %d lines were not imported (see the line numbers above)", bad, lines)
	}
	return nil
}

// read decodes and checks every line and hands the good ones to the workers.
func (im *importer) read(ctx context.Context, in io.Reader, jobs chan<- importJob) error {
	lr := &lineReader{r: bufio.NewReaderSize(&countingReader{r: in, n: &im.bytes}, 64<<10), max: maxImportLine}
	for n := int64(1); ; n++ {
		line, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading line %d: %w", n, err)
		}
		im.lines.Store(n)
		if tooLong {
			im.reject(n, fmt.Sprintf("longer than %d MiB", maxImportLine>>20))
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		tok, err := decodeTokenLine(line)
		if err != nil {
			im.reject(n, err.Error())
			continue
		}
		select {
		case jobs <- importJob{line: n, tok: tok}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// save saves the tokens of jobs until there are no more. A token the store
// refuses is a bad line; any other failure (Redis) stops the import.
func (im *importer) save(ctx context.Context, jobs <-chan importJob) error {
	for job := range jobs {
		err := im.store.SaveToken(ctx, &job.tok)
		switch {
		case err == nil:
			if n := im.imported.Add(1); im.progress == progressLines && n%im.every == 0 {
				im.printf("imported %d tokens (%d lines read)\n", n, im.lines.Load())
			}
		case errors.Is(err, tokencache.ErrInvalidToken), errors.Is(err, tokencache.ErrConflict):
			im.reject(job.line, invalidReason(err))
		default:
			return fmt.Errorf("line %d: %w", job.line, err)
		}
	}
	return nil
}

func (im *importer) reject(line int64, reason string) {
	im.bad.Add(1)
	im.printf("line %d: %s\n", line, reason)
}

// printf writes a line to stderr, first clearing a live progress line.
func (im *importer) printf(format string, args ...any) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.liveDrawn {
		fmt.Fprint(im.out, "\r\033[K")
		im.liveDrawn = false
	}
	fmt.Fprintf(im.out, format, args...)
}

// startLive redraws a progress line every progressTick in live mode, and
// returns the function that stops it and clears the line.
func (im *importer) startLive(start time.Time) (stop func()) {
	if im.progress != progressLive {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(im.tick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				im.drawLive(start)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		im.mu.Lock()
		defer im.mu.Unlock()
		if im.liveDrawn {
			fmt.Fprint(im.out, "\r\033[K")
			im.liveDrawn = false
		}
	}
}

func (im *importer) drawLive(start time.Time) {
	imported := im.imported.Load()
	pct := ""
	if im.size > 0 {
		pct = fmt.Sprintf("%3.0f%%  ", 100*float64(im.bytes.Load())/float64(im.size))
	}
	rate := float64(imported) / max(time.Since(start).Seconds(), 0.001)
	im.mu.Lock()
	defer im.mu.Unlock()
	fmt.Fprintf(im.out, "\r\033[Kimporting: %s%d lines read, %d imported, %d bad, %.0f tokens/s",
		pct, im.lines.Load(), imported, im.bad.Load(), rate)
	im.liveDrawn = true
}

// decodeTokenLine decodes one line strictly and checks that the store can
// save it. Its errors never quote the line: it may hold secrets.
func decodeTokenLine(line []byte) (tokencache.Token, error) {
	var t tokencache.Token
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return t, errors.New(jsonReason(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return t, errors.New("more than one JSON value on the line")
	}
	if t.ID != "" {
		if err := tokencache.ValidateID(t.ID); err != nil {
			return t, errors.New(invalidReason(err))
		}
	}
	t.Version = 0 // the store keeps the revisions: an import saves unconditionally
	if err := tokencache.ValidateSave(&t, time.Now()); err != nil {
		return t, errors.New(invalidReason(err))
	}
	return t, nil
}

// jsonReason says why a line is not a token, naming a field or an offset but
// never quoting a value.
func jsonReason(err error) string {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		parse   *time.ParseError
	)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: the line ends inside a value"
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return fmt.Sprintf("not a JSON object but a JSON %s", typeErr.Value)
		}
		return fmt.Sprintf("%s: a JSON %s where a %s belongs", typeErr.Field, typeErr.Value, typeErr.Type)
	case errors.As(err, &parse), strings.Contains(err.Error(), "Time.UnmarshalJSON"):
		return "expiry: not an RFC 3339 time"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if len(name) > 66 {
			name = name[:64] + `…"`
		}
		return "unknown field " + name
	}
	return "not a valid token"
}

// lineReader reads lines of any length up to max bytes. A longer line is
// skipped to its end and reported as tooLong, so that one bad line does not
// end the input.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// next returns the next line without its line ending; the slice is valid
// until the next call. It returns io.EOF after the last line.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	read := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		read = read || len(chunk) > 0
		if !tooLong {
			if len(lr.buf)+len(chunk) > lr.max+2 { // +2: the line ending
				tooLong, lr.buf = true, lr.buf[:0]
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && !read:
			return nil, false, io.EOF
		case err != nil && !errors.Is(err, io.EOF):
			return nil, false, err
		}
		line := bytes.TrimSuffix(bytes.TrimSuffix(lr.buf, []byte("\n")), []byte("\r"))
		if !tooLong && len(line) > lr.max {
			tooLong, line = true, nil
		}
		return line, tooLong, nil
	}
}

// countingReader counts the bytes read through it, for the percentage.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
