package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/view"
)

// Progress reporting modes of import.
const (
	ProgressAuto  = "auto"  // live on a terminal, else lines
	ProgressLive  = "live"  // one line rewritten every progressTick
	ProgressLines = "lines" // a line every progressEvery tokens
	ProgressOff   = "off"
)

const (
	progressTick  = 500 * time.Millisecond
	progressEvery = 10000
)

// importer saves the records of one import. Its counters are updated by the
// reader and the workers at once.
type importer struct {
	store     tokencache.Store
	namespace string // for messages
	workers   int
	progress  string
	dryRun    bool
	out       io.Writer     // stdout: what a dry run would change
	errOut    io.Writer     // stderr: bad records, progress, the summary
	size      int64         // input bytes, or -1 when unknown
	read      *atomic.Int64 // input bytes read so far, or nil
	every     int64         // lines mode: a line every this many tokens
	tick      time.Duration // live mode: how often the line is redrawn
	now       func() time.Time

	records  atomic.Int64 // records read
	imported atomic.Int64 // saved, or in a dry run: would change
	same     atomic.Int64 // dry run: already stored as they are
	bad      atomic.Int64

	mu        sync.Mutex // guards errOut, out and liveDrawn: the workers and progress share them
	liveDrawn bool       // a live progress line is on screen and must be cleared first
}

// importJob is one good record on its way to a worker.
type importJob struct {
	where string
	tok   tokencache.Token
}

func (im *importer) run(ctx context.Context, read func(ctx context.Context, fn func(Record) error) error, name string) error {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan importJob, im.workers*64)
	for range im.workers {
		g.Go(func() error { return im.save(gctx, jobs) })
	}
	g.Go(func() error {
		defer close(jobs)
		return im.readAll(gctx, read, jobs)
	})
	stopLive := im.startLive(start)
	err := g.Wait()
	stopLive()

	elapsed := time.Since(start)
	imported, bad, records := im.imported.Load(), im.bad.Load(), im.records.Load()
	if err != nil {
		return fmt.Errorf("import from %s stopped after %d records (%d tokens imported): %w", name, records, imported, err)
	}
	if im.dryRun {
		im.printf("dry run: %d of %d records would change namespace %s, %d are stored as they are, %d bad records; nothing was written\n",
			imported, records, im.namespace, im.same.Load(), bad)
	} else {
		rate := ""
		if secs := elapsed.Seconds(); imported > 0 && secs > 0 {
			rate = fmt.Sprintf(", %.0f tokens/s", float64(imported)/secs)
		}
		im.printf("imported %d tokens into namespace %s from %s in %s%s; %d bad records skipped\n",
			imported, im.namespace, name, elapsed.Round(time.Millisecond), rate, bad)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d records were not imported (see the lines above)", bad, records)
	}
	return nil
}

// readAll checks every record and hands the good ones to the workers.
func (im *importer) readAll(ctx context.Context, read func(ctx context.Context, fn func(Record) error) error, jobs chan<- importJob) error {
	return read(ctx, func(rec Record) error {
		im.records.Add(1)
		if rec.Bad == "" {
			rec.Bad = im.check(&rec.Token)
		}
		if rec.Bad != "" {
			im.reject(rec.Where, rec.Bad)
			return nil
		}
		select {
		case jobs <- importJob{where: rec.Where, tok: rec.Token}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// check says why the store cannot take t ("" when it can), and drops its
// Version: an import always overwrites.
func (im *importer) check(t *tokencache.Token) string {
	if t.ID != "" {
		if err := tokencache.ValidateID(t.ID); err != nil {
			return view.InvalidReason(err)
		}
	}
	t.Version = 0
	if err := tokencache.ValidateSave(t, im.now()); err != nil {
		return view.InvalidReason(err)
	}
	return ""
}

// save saves the tokens of jobs until there are no more. A token the store
// refuses is a bad record; any other failure (Redis) stops the import.
func (im *importer) save(ctx context.Context, jobs <-chan importJob) error {
	for job := range jobs {
		if im.dryRun {
			if err := im.preview(ctx, job); err != nil {
				return fmt.Errorf("%s: %w", job.where, err)
			}
			continue
		}
		err := im.store.SaveToken(ctx, &job.tok)
		switch {
		case err == nil:
			if n := im.imported.Add(1); im.progress == ProgressLines && n%im.every == 0 {
				im.printf("imported %d tokens (%d records read)\n", n, im.records.Load())
			}
		case errors.Is(err, tokencache.ErrInvalidToken), errors.Is(err, tokencache.ErrConflict):
			im.reject(job.where, view.InvalidReason(err))
		default:
			return fmt.Errorf("%s: %w", job.where, err)
		}
	}
	return nil
}

// preview says on stdout what saving job would do: create a token, update
// one (naming the fields that change, never their values), or nothing.
func (im *importer) preview(ctx context.Context, job importJob) error {
	var (
		cur tokencache.Token
		err error
	)
	if job.tok.ID != "" {
		cur, err = im.store.FindTokenByID(ctx, job.tok.ID)
	} else {
		cur, err = im.store.FindToken(ctx, job.tok)
	}
	switch {
	case errors.Is(err, tokencache.ErrNotFound):
		im.imported.Add(1)
		id := job.tok.ID
		if id == "" {
			id = "(new ID)"
		}
		im.outf("%s: create %s for user %s, client %s\n", job.where, id, view.Cell(job.tok.UserName), view.Cell(job.tok.ClientID))
		return nil
	case errors.Is(err, tokencache.ErrInvalidToken):
		im.reject(job.where, view.InvalidReason(err))
		return nil
	case err != nil:
		return err
	}
	changed := changedFields(cur, job.tok)
	if len(changed) == 0 {
		im.same.Add(1)
		return nil
	}
	im.imported.Add(1)
	im.outf("%s: update %s (user %s, client %s): %v\n", job.where, cur.ID, view.Cell(cur.UserName), view.Cell(cur.ClientID), changed)
	return nil
}

// changedFields names the fields of tokencache.Token (by their JSON names)
// in which next differs from cur, leaving out what the store manages (ID,
// Version).
func changedFields(cur, next tokencache.Token) []string {
	var names []string
	cv, nv := reflect.ValueOf(cur), reflect.ValueOf(next)
	typ := cv.Type()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "ID" || f.Name == "Version" {
			continue
		}
		a, b := cv.Field(i).Interface(), nv.Field(i).Interface()
		if ta, ok := a.(time.Time); ok {
			if !ta.Equal(b.(time.Time)) {
				names = append(names, jsonName(f))
			}
			continue
		}
		if a != b {
			names = append(names, jsonName(f))
		}
	}
	return names
}

func jsonName(f reflect.StructField) string {
	if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" {
		return name
	}
	return f.Name
}

func (im *importer) reject(where, reason string) {
	im.bad.Add(1)
	im.printf("%s: %s\n", where, reason)
}

// printf writes a line to stderr, first clearing a live progress line.
func (im *importer) printf(format string, args ...any) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.clearLive()
	fmt.Fprintf(im.errOut, format, args...)
}

// outf writes a line to stdout.
func (im *importer) outf(format string, args ...any) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.clearLive()
	fmt.Fprintf(im.out, format, args...)
}

func (im *importer) clearLive() {
	if im.liveDrawn {
		fmt.Fprint(im.errOut, "\r\033[K")
		im.liveDrawn = false
	}
}

// startLive redraws a progress line every tick in live mode, and returns
// the function that stops it and clears the line.
func (im *importer) startLive(start time.Time) (stop func()) {
	if im.progress != ProgressLive {
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
		im.clearLive()
	}
}

func (im *importer) drawLive(start time.Time) {
	imported := im.imported.Load()
	pct := ""
	if im.size > 0 && im.read != nil {
		pct = fmt.Sprintf("%3.0f%%  ", 100*float64(im.read.Load())/float64(im.size))
	}
	rate := float64(imported) / max(time.Since(start).Seconds(), 0.001)
	im.mu.Lock()
	defer im.mu.Unlock()
	fmt.Fprintf(im.errOut, "\r\033[Kimporting: %s%d records read, %d imported, %d bad, %.0f tokens/s",
		pct, im.records.Load(), imported, im.bad.Load(), rate)
	im.liveDrawn = true
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
