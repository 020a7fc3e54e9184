package modelcheck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/memstore"
)

// Config describes one run of the driver.
type Config struct {
	// Seed names the run: the same seed makes the same operations.
	Seed uint64
	// Steps is how many operations to generate (default 200).
	Steps int
	// Instances is how many instances of the store under test act as
	// separate processes (default 3).
	Instances int
	// FaultRate is the share of operations run through the fault loop, 0
	// to 1: the operation runs once with a fault at command 1, once at
	// command 2, and so on until it completes before reaching the fault.
	FaultRate float64
	// MaxFaultsPerOp bounds that loop (default 100).
	MaxFaultsPerOp int
	// New starts one instance (a process) of the store under test and
	// returns it with a function that stops it. inj is nil for the
	// observer, an instance that is never faulted and that the driver uses
	// to find out what a faulted operation did. Otherwise New installs inj
	// on the instance's own Redis client (see Install); a store without
	// Redis ignores it, and then no fault ever fires.
	New func(inj *Injector) (tokencache.Store, func())
	// Timeout bounds each call (default 10s).
	Timeout time.Duration
	// Until, when set, ends the run at the first step that starts after
	// it (a soak's deadline); the steps done so far are checked as usual.
	Until time.Time
}

// Stats counts what a run did.
type Stats struct {
	Steps   int            // generated operations
	Calls   int            // calls of the store under test, faulted or not
	Faults  int            // calls in which a fault fired
	ByMode  map[string]int // fired faults by mode
	ByKind  map[string]int // calls by method
	Applied int            // faulted writes that turned out to have happened
}

func (s *Stats) add(o Stats) {
	s.Steps += o.Steps
	s.Calls += o.Calls
	s.Faults += o.Faults
	s.Applied += o.Applied
	if s.ByMode == nil {
		s.ByMode = map[string]int{}
		s.ByKind = map[string]int{}
	}
	for k, v := range o.ByMode {
		s.ByMode[k] += v
	}
	for k, v := range o.ByKind {
		s.ByKind[k] += v
	}
}

// Add adds o's counts to s.
func (s *Stats) Add(o Stats) { s.add(o) }

// String prints the counts on one line.
func (s Stats) String() string {
	modes := make([]string, 0, len(s.ByMode))
	for k, v := range s.ByMode {
		modes = append(modes, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(modes)
	return fmt.Sprintf("%d steps, %d store calls, %d faults (%s), %d faulted writes applied",
		s.Steps, s.Calls, s.Faults, strings.Join(modes, " "), s.Applied)
}

// Failure is a run that broke the store's contract: the seed and step that
// reproduce it and the history that led there.
type Failure struct {
	Seed    uint64
	Step    int
	Msg     string
	History []string
}

// Error prints the failure with its whole history.
func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "modelcheck: seed %d, step %d: %s\nhistory (%d entries):\n", f.Seed, f.Step, f.Msg, len(f.History))
	for _, h := range f.History {
		b.WriteString("  ")
		b.WriteString(h)
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "replay: the same seed (%d) replays this run", f.Seed)
	return b.String()
}

// instance is one process of the store under test.
type instance struct {
	store tokencache.Store
	stop  func()
	inj   *Injector
}

type driver struct {
	cfg   Config
	g     gen
	model *memstore.Store
	inst  []*instance
	obs   tokencache.Store // never faulted
	stopO func()

	toSUT   map[string]string // model ID -> store ID
	toModel map[string]string // store ID -> model ID
	offset  map[string]int64  // model ID -> store revision minus model revision
	known   []string          // model IDs ever used, in order

	step    int
	history []string
	stats   Stats
}

// Run drives the store under test and the reference memstore with the same
// operations and checks after every step that the store answers as the
// reference does. It returns what it did and a *Failure when the store
// broke its contract (or another error when the run could not go on).
func Run(cfg Config) (Stats, error) {
	if cfg.Steps == 0 {
		cfg.Steps = 200
	}
	if cfg.Instances == 0 {
		cfg.Instances = 3
	}
	if cfg.MaxFaultsPerOp == 0 {
		cfg.MaxFaultsPerOp = 100
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	d := &driver{
		cfg:     cfg,
		g:       gen{r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), base: time.UnixMilli(time.Now().UnixMilli())},
		model:   memstore.New(),
		toSUT:   map[string]string{},
		toModel: map[string]string{},
		offset:  map[string]int64{},
		stats:   Stats{ByMode: map[string]int{}, ByKind: map[string]int{}},
	}
	d.known = append(d.known, fixedIDs...)
	d.obs, d.stopO = cfg.New(nil)
	defer func() {
		for _, in := range d.inst {
			in.stop()
		}
		d.stopO()
	}()
	for range cfg.Instances {
		d.inst = append(d.inst, d.start())
	}
	for d.step = 1; d.step <= cfg.Steps && (cfg.Until.IsZero() || time.Now().Before(cfg.Until)); d.step++ {
		d.stats.Steps++
		op := d.genOp()
		var err error
		switch {
		case op.Kind == KindRace:
			err = d.race()
		case op.Kind != KindRestart && chance(d.g.r, cfg.FaultRate):
			err = d.faultLoop(op)
		default:
			err = d.plain(op)
		}
		if err == nil {
			err = d.check(op.Inst)
		}
		if err != nil {
			return d.stats, d.fail(err)
		}
	}
	return d.stats, nil
}

func (d *driver) start() *instance {
	inj := NewInjector()
	s, stop := d.cfg.New(inj)
	return &instance{store: s, stop: stop, inj: inj}
}

func (d *driver) restart(i int) {
	d.inst[i].stop()
	d.inst[i] = d.start()
}

// failure is a contract violation found by a check.
type failure struct{ msg string }

func (f failure) Error() string { return f.msg }

func violation(format string, args ...any) error { return failure{fmt.Sprintf(format, args...)} }

func (d *driver) fail(err error) error {
	var f failure
	if !errors.As(err, &f) {
		return fmt.Errorf("modelcheck: seed %d, step %d: %w", d.cfg.Seed, d.step, err)
	}
	return &Failure{Seed: d.cfg.Seed, Step: d.step, Msg: f.msg, History: d.history}
}

func (d *driver) log(format string, args ...any) {
	d.history = append(d.history, fmt.Sprintf("#%d ", d.step)+fmt.Sprintf(format, args...))
}

func (d *driver) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.cfg.Timeout)
}

// genOp draws the next operation.
func (d *driver) genOp() Op {
	r := d.g.r
	op := Op{Inst: r.IntN(len(d.inst))}
	switch x := r.IntN(100); {
	case x < 45:
		op.Kind = KindSave
		rule := []tokencache.Rule{tokencache.RuleID, tokencache.RuleID, tokencache.RuleID,
			tokencache.RuleUserName, tokencache.RuleUserName, tokencache.RuleUserName,
			tokencache.RuleGrantToken, tokencache.RuleRefreshToken, tokencache.RuleRefreshToken,
			tokencache.RuleAccessToken}[r.IntN(10)]
		op.Token = d.g.saveToken(rule, d.pickID())
		switch y := r.IntN(10); {
		case y < 7:
			op.vmode = versionZero
		case y < 9:
			op.vmode = versionCurrent
		default:
			op.vmode = versionStale
		}
	case x < 70:
		op.Kind = KindFind
		rule := tokencache.Rule(1 + r.IntN(5))
		op.Token = d.g.query(rule)
		if rule == tokencache.RuleID {
			op.Token.ID = d.pickID()
		}
	case x < 78:
		op.Kind = KindFindByID
		op.ID = d.pickID()
	case x < 88:
		op.Kind = KindDelete
		op.ID = d.pickID()
	case x < 93:
		op.Kind = KindGetTokens
	case x < 96:
		op.Kind = KindDeleteTokens
	case x < 98 && len(d.inst) > 1:
		op.Kind = KindRace
	default:
		op.Kind = KindRestart
	}
	return op
}

// pickID returns the ID of a live token, one used before (deleted now,
// perhaps), a fixed imported ID, or a fresh one.
func (d *driver) pickID() string {
	r := d.g.r
	live := d.liveIDs()
	switch x := r.IntN(100); {
	case x < 55 && len(live) > 0:
		return pick(r, live)
	case x < 75:
		return pick(r, d.known)
	case x < 90:
		return pick(r, fixedIDs)
	default:
		id := tokencache.NewID()
		d.known = append(d.known, id)
		return id
	}
}

// liveIDs returns the model's live IDs in the order they were first used,
// so that a seed picks the same tokens whatever IDs memstore drew.
func (d *driver) liveIDs() []string {
	ctx, cancel := d.ctx()
	defer cancel()
	ts, _ := d.model.GetTokens(ctx)
	live := make(map[string]bool, len(ts))
	for _, t := range ts {
		live[t.ID] = true
	}
	ids := make([]string, 0, len(ts))
	for _, id := range d.known {
		if live[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// sutID is the store's ID for a model ID; an ID the driver chose (fixed or
// fresh) is the same in both.
func (d *driver) sutID(m string) string {
	if s, ok := d.toSUT[m]; ok {
		return s
	}
	return m
}

// bind records that the store's s is the model's m.
func (d *driver) bind(m, s string) error {
	if cur, ok := d.toSUT[m]; ok && cur != s {
		return violation("the store saved model token %s as %s, but it is %s", m, s, cur)
	}
	if cur, ok := d.toModel[s]; ok && cur != m {
		return violation("the store's token %s is model token %s, but this save made model token %s", s, cur, m)
	}
	d.toSUT[m], d.toModel[s] = s, m
	if !slices.Contains(d.known, m) {
		d.known = append(d.known, m)
	}
	return nil
}

// errClass sorts errors into what the contract distinguishes.
func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, tokencache.ErrNotFound):
		return "not-found"
	case errors.Is(err, tokencache.ErrConflict):
		return "conflict"
	case errors.Is(err, tokencache.ErrInvalidToken):
		return "invalid"
	default:
		return "failure"
	}
}

// target returns the model token a save of t would update.
func (d *driver) target(t tokencache.Token) (tokencache.Token, bool) {
	ctx, cancel := d.ctx()
	defer cancel()
	q := t
	q.Version = 0
	got, err := d.model.FindToken(ctx, q)
	return got, err == nil
}

// versionFor returns the model revision a save of op carries.
func (d *driver) versionFor(op Op) int64 {
	cur, found := d.target(op.Token)
	switch op.vmode {
	case versionCurrent:
		if found {
			return cur.Version
		}
		return 1
	case versionStale:
		if found && cur.Version > 1 {
			return cur.Version - 1
		}
		return cur.Version + 5
	}
	return 0
}

// toStore translates a model token or query into the store's terms.
func (d *driver) toStore(t tokencache.Token) tokencache.Token {
	if t.Version != 0 {
		if cur, found := d.target(t); found {
			t.Version += d.offset[cur.ID]
		}
	}
	if t.ID != "" {
		t.ID = d.sutID(t.ID)
	}
	return t
}

// same reports whether the store's token s is the model's token m: the
// same model ID, the same fields, and the revision the offset predicts.
func (d *driver) same(m, s tokencache.Token) string {
	if mid, ok := d.toModel[s.ID]; !ok || mid != m.ID {
		return fmt.Sprintf("the store returned token %s (model %q) where the model has %s", s.ID, mid, m.ID)
	}
	if !sameFields(m, s) {
		return fmt.Sprintf("token %s differs: model %s, store %s", m.ID, describe(m), describe(s))
	}
	if s.Version != m.Version+d.offset[m.ID] {
		return fmt.Sprintf("token %s has revision %d in the store, want %d (model %d + offset %d)",
			m.ID, s.Version, m.Version+d.offset[m.ID], m.Version, d.offset[m.ID])
	}
	return ""
}

// sameFields compares everything but ID and Version.
func sameFields(a, b tokencache.Token) bool {
	return a.UserName == b.UserName && a.ClientID == b.ClientID && a.ClientSecret == b.ClientSecret &&
		a.RefreshToken == b.RefreshToken && a.AccessToken == b.AccessToken && a.GrantToken == b.GrantToken &&
		a.Expiry.Equal(b.Expiry) && a.RedirectURL == b.RedirectURL && a.APIDomain == b.APIDomain
}

// call runs op on the store under test through instance i with ctx, and
// returns the token it returned or saved, the tokens of GetTokens, and its
// error. t is the store-side input of a save.
func (d *driver) call(ctx context.Context, i int, op Op, t *tokencache.Token) (tokencache.Token, []tokencache.Token, error) {
	d.stats.Calls++
	d.stats.ByKind[op.Kind.String()]++
	s := d.inst[i].store
	switch op.Kind {
	case KindSave:
		err := s.SaveToken(ctx, t)
		return *t, nil, err
	case KindFind:
		got, err := s.FindToken(ctx, d.toStore(op.Token))
		return got, nil, err
	case KindFindByID:
		got, err := s.FindTokenByID(ctx, d.sutID(op.ID))
		return got, nil, err
	case KindDelete:
		return tokencache.Token{}, nil, s.DeleteToken(ctx, d.sutID(op.ID))
	case KindGetTokens:
		ts, err := s.GetTokens(ctx)
		return tokencache.Token{}, ts, err
	case KindDeleteTokens:
		return tokencache.Token{}, nil, s.DeleteTokens(ctx)
	}
	return tokencache.Token{}, nil, nil
}

// plain runs op without a fault and checks its answer.
func (d *driver) plain(op Op) error {
	if op.Kind == KindRestart {
		d.log("restart instance %d", op.Inst)
		d.restart(op.Inst)
		return nil
	}
	if op.Kind == KindSave {
		op.Token.Version = d.versionFor(op)
	}
	return d.runChecked(op, d.toStore(op.Token), "")
}

// runChecked runs op on instance op.Inst and on the model and compares the
// answers. st is the store-side token of a save.
func (d *driver) runChecked(op Op, st tokencache.Token, note string) error {
	ctx, cancel := d.ctx()
	defer cancel()
	got, list, err := d.call(ctx, op.Inst, op, &st)
	return d.compare(op, got, list, err, note)
}

// modelRun applies op to the model.
func (d *driver) modelRun(op Op) (tokencache.Token, []tokencache.Token, error) {
	ctx, cancel := d.ctx()
	defer cancel()
	switch op.Kind {
	case KindSave:
		t := op.Token
		err := d.model.SaveToken(ctx, &t)
		return t, nil, err
	case KindFind:
		t, err := d.model.FindToken(ctx, op.Token)
		return t, nil, err
	case KindFindByID:
		t, err := d.model.FindTokenByID(ctx, op.ID)
		return t, nil, err
	case KindDelete:
		return tokencache.Token{}, nil, d.model.DeleteToken(ctx, op.ID)
	case KindGetTokens:
		ts, err := d.model.GetTokens(ctx)
		return tokencache.Token{}, ts, err
	case KindDeleteTokens:
		return tokencache.Token{}, nil, d.model.DeleteTokens(ctx)
	}
	return tokencache.Token{}, nil, nil
}

// opString prints op for the history.
func opString(op Op) string {
	switch op.Kind {
	case KindSave, KindFind:
		return fmt.Sprintf("[inst %d] %s%s", op.Inst, op.Kind, describe(op.Token))
	case KindFindByID, KindDelete:
		return fmt.Sprintf("[inst %d] %s(%s)", op.Inst, op.Kind, op.ID)
	default:
		return fmt.Sprintf("[inst %d] %s", op.Inst, op.Kind)
	}
}

func result(t tokencache.Token, list []tokencache.Token, err error) string {
	if err != nil {
		return errClass(err) + ": " + err.Error()
	}
	if list != nil {
		return fmt.Sprintf("%d tokens", len(list))
	}
	if t.ID != "" {
		return fmt.Sprintf("id=%s v=%d", t.ID, t.Version)
	}
	return "ok"
}

// compare applies op to the model and checks the store's answer against it.
func (d *driver) compare(op Op, got tokencache.Token, list []tokencache.Token, err error, note string) error {
	mt, mlist, merr := d.modelRun(op)
	d.log("%s%s -> store %s; model %s", opString(op), note, result(got, list, err), result(mt, mlist, merr))
	if errClass(err) != errClass(merr) {
		return violation("%s: the store answered %s (%v), the model %s", op.Kind, errClass(err), err, errClass(merr))
	}
	if merr != nil {
		return nil
	}
	switch op.Kind {
	case KindSave:
		if mt.Version == 1 {
			// An insert, or a re-created ID: a new token starts at 1.
			d.offset[mt.ID] = 0
			if got.Version != 1 {
				return violation("a new token (model %s, store %s) got revision %d, want 1", mt.ID, got.ID, got.Version)
			}
		}
		if e := d.bind(mt.ID, got.ID); e != nil {
			return e
		}
		if want := mt.Version + d.offset[mt.ID]; got.Version != want {
			return violation("save of %s returned revision %d, want %d", mt.ID, got.Version, want)
		}
	case KindFind, KindFindByID:
		if msg := d.same(mt, got); msg != "" {
			return violation("%s: %s", op.Kind, msg)
		}
	case KindGetTokens:
		return d.sameSet(mlist, list, "GetTokens")
	}
	return nil
}

// sameSet compares the model's tokens with the store's.
func (d *driver) sameSet(model, store []tokencache.Token, what string) error {
	byID := map[string]tokencache.Token{}
	for _, t := range model {
		byID[t.ID] = t
	}
	seen := map[string]bool{}
	for _, s := range store {
		m, ok := d.toModel[s.ID]
		mt, live := byID[m]
		if !ok || !live {
			return violation("%s: the store holds token %s %s that the model does not%s", what, s.ID, describe(s), d.dupOf(s, model))
		}
		if seen[m] {
			return violation("%s returned token %s twice", what, s.ID)
		}
		seen[m] = true
		if msg := d.same(mt, s); msg != "" {
			return violation("%s: %s", what, msg)
		}
	}
	for _, t := range model {
		if !seen[t.ID] {
			return violation("%s: live token %s %s (store %s) is missing", what, t.ID, describe(t), d.sutID(t.ID))
		}
	}
	return nil
}

// dupOf says which model token s shares an identity with.
func (d *driver) dupOf(s tokencache.Token, model []tokencache.Token) string {
	for _, m := range model {
		switch {
		case s.UserName != "" && s.UserName == m.UserName && s.ClientID == m.ClientID:
			return fmt.Sprintf(": a duplicate of %s's user+client", m.ID)
		case s.RefreshToken != "" && s.RefreshToken == m.RefreshToken && s.ClientID == m.ClientID:
			return fmt.Sprintf(": a duplicate of %s's refresh+client", m.ID)
		case s.GrantToken != "" && s.GrantToken == m.GrantToken && s.ClientID == m.ClientID:
			return fmt.Sprintf(": a duplicate of %s's grant+client", m.ID)
		}
	}
	return ""
}

// check verifies the invariants through instance via and the observer:
// GetTokens equals the model, every live token is found by ID, and every
// lookup of the value universe answers as the model does.
func (d *driver) check(via int) error { return d.checkThrough(via, true) }

// checkThrough is check; without full the lookups go through instance via
// only (the one a fault just hit), which is cheaper.
func (d *driver) checkThrough(via int, full bool) error {
	ctx, cancel := d.ctx()
	defer cancel()
	model, err := d.model.GetTokens(ctx)
	if err != nil {
		return err
	}
	store, err := d.obs.GetTokens(ctx)
	if err != nil {
		return fmt.Errorf("GetTokens through the observer: %w", err)
	}
	d.stats.Calls++
	if err := d.sameSet(model, store, "check: GetTokens"); err != nil {
		return err
	}
	through := []tokencache.Store{d.inst[via].store, d.obs}
	if !full {
		through = through[:1]
	}
	for _, s := range through {
		name := fmt.Sprintf("instance %d", via)
		if s == d.obs {
			name = "the observer"
		}
		for _, m := range model {
			got, err := s.FindTokenByID(ctx, d.sutID(m.ID))
			d.stats.Calls++
			if err != nil {
				return violation("check: FindTokenByID(%s) through %s: %v (model has %s)", d.sutID(m.ID), name, err, describe(m))
			}
			if msg := d.same(m, got); msg != "" {
				return violation("check: FindTokenByID through %s: %s", name, msg)
			}
		}
		for _, q := range universe() {
			mt, merr := d.model.FindToken(ctx, q)
			got, err := s.FindToken(ctx, q)
			d.stats.Calls++
			switch {
			case errClass(err) == "failure":
				return fmt.Errorf("check: FindToken%s through %s: %w", describe(q), name, err)
			case merr == nil && err != nil:
				return violation("check: FindToken%s through %s: %v, but the model finds %s %s: the token is unreachable by %s",
					describe(q), name, errClass(err), mt.ID, describe(mt), tokencache.RuleOf(q))
			case merr != nil && err == nil:
				return violation("check: FindToken%s through %s found %s %s, the model finds nothing", describe(q), name, got.ID, describe(got))
			case merr == nil:
				if msg := d.same(mt, got); msg != "" {
					return violation("check: FindToken%s through %s: %s", describe(q), name, msg)
				}
			}
		}
	}
	return nil
}
