package chaos

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/refresher"
)

// The trace of a run: each worker appends one line per store read, save,
// record read or save, in-flight mark, lock attempt and refresh request to
// a file of its own; the orchestrator adds the server's view and the
// faults. When a user is lost, the lines about that user are merged into
// its timeline. Secrets never appear: a refresh token is named by its
// fingerprint (the first 4 bytes of its SHA-256, in hex), and a lock's
// fencing token likewise.

// fingerprint names a secret without revealing it.
func fingerprint(secret string) string {
	if secret == "" {
		return "-"
	}
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:4])
}

// describe is a token as a trace shows it.
func describe(t tokencache.Token) string {
	return fmt.Sprintf("v%d rt=%s exp%+.1fs", t.Version, fingerprint(t.RefreshToken), time.Until(t.Expiry).Seconds())
}

// outcome is a store answer as a trace shows it.
func outcome(t tokencache.Token, err error) string {
	switch {
	case errors.Is(err, tokencache.ErrNotFound):
		return "not found"
	case err != nil:
		return "error: " + errClass(err)
	}
	return describe(t)
}

// tracer appends trace lines to one worker's file: Unix ms, pid, user,
// token ID, then the event. A nil tracer traces nothing.
type tracer struct {
	pid int
	mu  sync.Mutex // guards f
	f   *os.File
}

func openTracer(path string) (*tracer, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chaos: open the trace: %w", err)
	}
	return &tracer{pid: os.Getpid(), f: f}, nil
}

func (t *tracer) close() {
	if t != nil {
		_ = t.f.Close()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// log writes one line, unbuffered: a worker SIGKILLed a moment later keeps
// its trace.
func (t *tracer) log(user, id, format string, args ...any) {
	if t == nil {
		return
	}
	line := fmt.Sprintf("%d %d %s %s %s\n", time.Now().UnixMilli(), t.pid, dash(user), dash(id), fmt.Sprintf(format, args...))
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.f.WriteString(line)
}

// tracedStore is the store a traced worker's refresher sees: every read
// and save it makes is traced, and Record hands out the traced record.
type tracedStore struct {
	tokencache.Store
	t   *tracer
	rec tokencache.Store // the traced record; nil without one
}

func (s *tracedStore) FindToken(ctx context.Context, q tokencache.Token) (tokencache.Token, error) {
	tok, err := s.Store.FindToken(ctx, q)
	s.t.log(firstOf(tok.UserName, q.UserName), firstOf(tok.ID, q.ID), "read: %s", outcome(tok, err))
	return tok, err
}

func (s *tracedStore) FindTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	tok, err := s.Store.FindTokenByID(ctx, id)
	s.t.log(tok.UserName, id, "read by ID: %s", outcome(tok, err))
	return tok, err
}

// FindTokenFromRecord is the refresher's read under the lock.
func (s *tracedStore) FindTokenFromRecord(ctx context.Context, q tokencache.Token) (tokencache.Token, error) {
	var (
		tok tokencache.Token
		err error
	)
	if rf, ok := s.Store.(tokencache.RecordFinder); ok {
		tok, err = rf.FindTokenFromRecord(ctx, q)
	} else {
		tok, err = s.Store.FindTokenByID(ctx, q.ID)
	}
	s.t.log(firstOf(tok.UserName, q.UserName), firstOf(tok.ID, q.ID), "read under the lock (record): %s", outcome(tok, err))
	return tok, err
}

func (s *tracedStore) SaveToken(ctx context.Context, t *tokencache.Token) error {
	base := t.Version
	err := s.Store.SaveToken(ctx, t)
	if err != nil {
		s.t.log(t.UserName, t.ID, "save from v%d rt=%s: error: %s", base, fingerprint(t.RefreshToken), errClass(err))
	} else {
		s.t.log(t.UserName, t.ID, "save from v%d: saved %s", base, describe(*t))
	}
	return err
}

// Record returns the traced record (see redisstore's Record).
func (s *tracedStore) Record() tokencache.Store { return s.rec }

// Namespace is the inner store's, so the refresher's locks sit beside it.
func (s *tracedStore) Namespace() string {
	if ns, ok := s.Store.(interface{ Namespace() string }); ok {
		return ns.Namespace()
	}
	return ""
}

// tracedRecord is the durable record behind Redis, traced: its reads, its
// saves and the in-flight marks.
type tracedRecord struct {
	tokencache.Store
	fr tokencache.FlightRecorder
	t  *tracer
}

func (r *tracedRecord) FindToken(ctx context.Context, q tokencache.Token) (tokencache.Token, error) {
	tok, err := r.Store.FindToken(ctx, q)
	r.t.log(firstOf(tok.UserName, q.UserName), firstOf(tok.ID, q.ID), "record read: %s", outcome(tok, err))
	return tok, err
}

func (r *tracedRecord) FindTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	tok, err := r.Store.FindTokenByID(ctx, id)
	r.t.log(tok.UserName, id, "record read by ID: %s", outcome(tok, err))
	return tok, err
}

func (r *tracedRecord) SaveToken(ctx context.Context, t *tokencache.Token) error {
	base := t.Version
	err := r.Store.SaveToken(ctx, t)
	if err != nil {
		r.t.log(t.UserName, t.ID, "record save from v%d rt=%s: error: %s", base, fingerprint(t.RefreshToken), errClass(err))
	} else {
		r.t.log(t.UserName, t.ID, "record save from v%d: saved %s", base, describe(*t))
	}
	return err
}

func (r *tracedRecord) BeginFlight(ctx context.Context, id string, version int64, holder string, ttl time.Duration) (bool, tokencache.Flight, error) {
	ok, cur, err := r.fr.BeginFlight(ctx, id, version, holder, ttl)
	switch {
	case err != nil:
		r.t.log("", id, "record mark v%d by %s: error: %s", version, fingerprint(holder), errClass(err))
	case ok:
		r.t.log("", id, "record mark v%d by %s: begun", version, fingerprint(holder))
	default:
		r.t.log("", id, "record mark v%d by %s: refused, the record has v%d by %s for %v", version, fingerprint(holder),
			cur.Version, fingerprint(cur.Holder), time.Until(cur.Until).Round(time.Millisecond))
	}
	return ok, cur, err
}

func (r *tracedRecord) ExtendFlight(ctx context.Context, id, holder string, ttl time.Duration) (bool, error) {
	ok, err := r.fr.ExtendFlight(ctx, id, holder, ttl)
	r.t.log("", id, "record mark by %s extended: %v %v", fingerprint(holder), ok, err)
	return ok, err
}

func (r *tracedRecord) EndFlight(ctx context.Context, id, holder string) error {
	err := r.fr.EndFlight(ctx, id, holder)
	r.t.log("", id, "record mark by %s ended: %v", fingerprint(holder), err)
	return err
}

func (r *tracedRecord) CurrentFlight(ctx context.Context, id string) (tokencache.Flight, bool, error) {
	return r.fr.CurrentFlight(ctx, id)
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// tracedEndpoint traces each refresh: the revision and refresh token sent,
// and the answer.
type tracedEndpoint struct {
	refresher.Endpoint
	t *tracer
}

func (e tracedEndpoint) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	e.t.log(t.UserName, t.ID, "refresh sent: v%d rt=%s", t.Version, fingerprint(t.RefreshToken))
	got, err := e.Endpoint.Refresh(ctx, t)
	if err != nil {
		e.t.log(t.UserName, t.ID, "refresh of rt=%s failed: %s", fingerprint(t.RefreshToken), errClass(err))
	} else {
		e.t.log(t.UserName, t.ID, "refresh of rt=%s answered: rt=%s", fingerprint(t.RefreshToken), fingerprint(got.RefreshToken))
	}
	return got, err
}

// lockTrace is a Redis hook tracing the outcome of each lock obtain and
// in-flight record write in Redis.
type lockTrace struct {
	t      *tracer
	prefix string // the namespace and ":"
}

func (h lockTrace) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h lockTrace) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h lockTrace) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		name := strings.ToLower(cmd.Name())
		if name != "evalsha" && name != "eval" {
			return err
		}
		args := cmd.Args()
		if len(args) < 4 {
			return err
		}
		key, _ := args[3].(string)
		res := "ok"
		switch {
		case errors.Is(err, redis.Nil):
			res = "nil"
		case err != nil:
			res = "error: " + errClass(err)
		default:
			if c, ok := cmd.(*redis.Cmd); ok {
				res = fmt.Sprint(c.Val())
				if vals, ok := c.Val().([]any); ok && len(vals) > 1 {
					// {-1, "revision holder", pttl}: the holder's fencing token fingerprinted
					rev, holder, _ := strings.Cut(fmt.Sprint(vals[1]), " ")
					res = fmt.Sprintf("%v: v%s by %s", vals[0], rev, fingerprint(holder))
				}
			}
		}
		switch {
		case strings.HasPrefix(key, h.prefix+"lock:") && len(args) == 7:
			// redislock's obtain: EVAL(SHA) script 1 key value tokenLen ttl;
			// a busy lock (nil) is not traced: waiting is the default
			if res != "nil" {
				h.t.log("", braced(key), "lock obtain by %s: %s", fingerprint(fmt.Sprint(args[4])), res)
			}
		case strings.HasPrefix(key, h.prefix+"lock:") && len(args) == 8:
			// the in-flight script: 2 keys, then the holder, revision, ttl
			h.t.log("", braced(key), "Redis flight v%v by %s: %s", args[6], fingerprint(fmt.Sprint(args[5])), res)
		}
		return err
	}
}

// braced is the token ID between the braces of a key.
func braced(key string) string {
	i, j := strings.IndexByte(key, '{'), strings.LastIndexByte(key, '}')
	if i < 0 || j <= i {
		return key
	}
	return key[i+1 : j]
}

// traceLine is one line of a trace, parsed.
type traceLine struct {
	at   time.Time
	pid  int
	user string
	id   string
	text string
}

// readTraces reads the lines of the trace files in dir that are about
// user, its token id, or every user ("*").
func readTraces(dir, user, id string) []traceLine {
	paths, _ := filepath.Glob(filepath.Join(dir, "trace-*.log"))
	var out []traceLine
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			parts := strings.SplitN(sc.Text(), " ", 5)
			if len(parts) < 5 || (parts[2] != user && parts[3] != id && parts[2] != "*") {
				continue
			}
			ms, err1 := strconv.ParseInt(parts[0], 10, 64)
			pid, err2 := strconv.Atoi(parts[1])
			if err1 != nil || err2 != nil {
				continue
			}
			out = append(out, traceLine{at: time.UnixMilli(ms), pid: pid, user: parts[2], id: parts[3], text: parts[4]})
		}
		_ = f.Close()
	}
	return out
}

// userTimeline merges what the workers traced about user (token id), what
// the server saw and the faults into one timeline from `from` on, with
// runs of identical consecutive lines of one process collapsed; at most
// limit lines, the last ones.
func userTimeline(lines []traceLine, from, start time.Time, limit int) []string {
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	var out []string
	var last string
	repeat := 0
	flush := func() {
		if repeat > 0 {
			out[len(out)-1] += fmt.Sprintf(" (×%d)", repeat+1)
		}
		repeat = 0
	}
	for _, l := range lines {
		if l.at.Before(from) {
			continue
		}
		who := "server"
		if l.pid > 0 {
			who = fmt.Sprintf("pid %d", l.pid)
		} else if l.pid < 0 {
			who = "suite"
		}
		key := who + " " + stripExpiry(l.text)
		if strings.HasPrefix(l.text, "read: ") || strings.HasPrefix(l.text, "read by ID: ") {
			key = "reads " + stripExpiry(l.text) // one revision read by anyone
		}
		if key == last {
			repeat++
			continue
		}
		flush()
		last = key
		out = append(out, fmt.Sprintf("t+%.3fs %s: %s", l.at.Sub(start).Seconds(), who, l.text))
	}
	flush()
	if len(out) > limit {
		out = append([]string{fmt.Sprintf("(%d earlier lines left out)", len(out)-limit)}, out[len(out)-limit:]...)
	}
	return out
}

// stripExpiry drops the expiry figures, which change from one read to the
// next, so that repeated reads of one revision collapse.
func stripExpiry(s string) string {
	var b strings.Builder
	for _, w := range strings.Fields(s) {
		if strings.HasPrefix(w, "exp") {
			continue
		}
		b.WriteString(w)
		b.WriteByte(' ')
	}
	return b.String()
}
