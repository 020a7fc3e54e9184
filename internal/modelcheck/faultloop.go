package modelcheck

import (
	"fmt"
	"time"

	"github.com/tokencache/tokencache"
)

// faultLoop runs op once with a fault at command 1, once at command 2, and
// so on, until it completes before reaching the armed command. After each
// faulted call it finds out through the observer whether the call took
// effect, brings the model to the same state, retries the call as a caller
// would, and checks the invariants. An insert is undone after each attempt,
// so that every attempt exercises the insert path again.
func (d *driver) faultLoop(op Op) error {
	_, found := d.target(op.Token)
	wasInsert := op.Kind == KindSave && !found
	for n := 1; n <= d.cfg.MaxFaultsPerOp; n++ {
		if op.Kind == KindSave {
			op.Token.Version = d.versionFor(op)
		}
		pre, preFound := d.target(op.Token)
		mode := Mode(d.g.r.IntN(int(numModes)))
		in := d.inst[op.Inst]
		ctx, cancel := d.ctx()
		st := d.toStore(op.Token)
		in.inj.Arm(n, mode, cancel)
		got, list, err := d.call(ctx, op.Inst, op, &st)
		count, fired := in.inj.Disarm()
		cancel()
		if !fired {
			return d.compare(op, got, list, err, fmt.Sprintf(" [no fault: done in %d commands]", count))
		}
		d.stats.Faults++
		d.stats.ByMode[mode.String()]++
		note := fmt.Sprintf(" [%s at command %d of %d]", mode, n, count)
		if mode.kills() {
			d.restart(op.Inst)
			note += " [instance restarted]"
		}
		if e := d.resolve(op, pre, preFound, got, list, err, note); e != nil {
			return e
		}
		if err != nil && (op.Kind == KindSave || op.Kind == KindDelete || op.Kind == KindDeleteTokens) {
			if e := d.runChecked(op, d.toStore(op.Token), " [the caller retries]"); e != nil {
				return e
			}
		}
		if e := d.checkThrough(op.Inst, false); e != nil {
			return e
		}
		if wasInsert {
			if t, ok := d.target(op.Token); ok {
				if e := d.runObserver(Op{Kind: KindDelete, ID: t.ID}, " [undo the insert for the next attempt]"); e != nil {
					return e
				}
			}
		}
	}
	return nil
}

// runObserver runs op through the observer and the model and compares.
func (d *driver) runObserver(op Op, note string) error {
	ctx, cancel := d.ctx()
	defer cancel()
	var err error
	switch op.Kind {
	case KindDelete:
		d.stats.Calls++
		err = d.obs.DeleteToken(ctx, d.sutID(op.ID))
	default:
		return fmt.Errorf("runObserver: %s", op.Kind)
	}
	return d.compare(op, tokencache.Token{}, nil, err, " [observer]"+note)
}

// resolve handles the answer of a faulted call. An answer the contract
// distinguishes (success, not found, conflict, invalid) must be the
// model's; a failure leaves the effect of a write uncertain, so resolve
// looks at the store through the observer and applies the write to the
// model if it happened.
func (d *driver) resolve(op Op, pre tokencache.Token, preFound bool, got tokencache.Token, list []tokencache.Token, err error, note string) error {
	if err == nil || errClass(err) != "failure" {
		return d.compare(op, got, list, err, note)
	}
	d.log("%s%s -> store %s", opString(op), note, result(got, list, err))
	ctx, cancel := d.ctx()
	defer cancel()
	switch op.Kind {
	case KindSave:
		t := op.Token
		if tokencache.ValidateSave(&t, time.Now()) != nil {
			return violation("a faulted save of an invalid token failed with %v instead of ErrInvalidToken", err)
		}
		if op.Token.Version != 0 && (!preFound || pre.Version != op.Token.Version) {
			return nil // the model refuses it: nothing may change, which check verifies
		}
		applied, s, e := d.observeSave(op, pre, preFound)
		if e != nil || !applied {
			if e == nil {
				d.log("  resolved: the save did not happen")
			}
			return e
		}
		d.stats.Applied++
		mt, _, merr := d.modelRun(op)
		if merr != nil {
			return fmt.Errorf("model refused a save the store made: %w", merr)
		}
		if e := d.bind(mt.ID, s.ID); e != nil {
			return e
		}
		d.offset[mt.ID] = s.Version - mt.Version
		d.log("  resolved: the save happened: model %s v%d, store %s v%d", mt.ID, mt.Version, s.ID, s.Version)
	case KindDelete:
		_, e := d.obs.FindTokenByID(ctx, d.sutID(op.ID))
		d.stats.Calls++
		switch errClass(e) {
		case "not-found":
			_, _, _ = d.modelRun(op)
			d.log("  resolved: %s is gone", op.ID)
		case "ok":
			d.log("  resolved: %s is still there", op.ID)
		default:
			return fmt.Errorf("observer: FindTokenByID: %w", e)
		}
	case KindDeleteTokens:
		model, _ := d.model.GetTokens(ctx)
		gone := 0
		for _, m := range model {
			_, e := d.obs.FindTokenByID(ctx, d.sutID(m.ID))
			d.stats.Calls++
			switch errClass(e) {
			case "not-found":
				_ = d.model.DeleteToken(ctx, m.ID)
				gone++
			case "ok":
			default:
				return fmt.Errorf("observer: FindTokenByID: %w", e)
			}
		}
		d.log("  resolved: %d of %d tokens gone", gone, len(model))
	}
	return nil
}

// observeSave finds out through the observer whether a faulted save of op
// happened. pre is the model token it would update, if preFound. It returns
// the store's token when it did.
func (d *driver) observeSave(op Op, pre tokencache.Token, preFound bool) (bool, tokencache.Token, error) {
	ctx, cancel := d.ctx()
	defer cancel()
	if preFound || tokencache.RuleOf(op.Token) == tokencache.RuleID {
		id := op.Token.ID
		if preFound {
			id = pre.ID
		}
		s, err := d.obs.FindTokenByID(ctx, d.sutID(id))
		d.stats.Calls++
		switch {
		case errClass(err) == "not-found" && !preFound:
			return false, tokencache.Token{}, nil
		case errClass(err) == "not-found":
			return false, s, violation("a faulted save of %s lost the token: FindTokenByID(%s) finds nothing", id, d.sutID(id))
		case err != nil:
			return false, s, fmt.Errorf("observer: FindTokenByID: %w", err)
		}
		oldVersion := pre.Version + d.offset[pre.ID]
		switch {
		case preFound && sameFields(s, pre) && s.Version == oldVersion:
			return false, s, nil
		case sameFields(s, op.Token):
			return true, s, nil
		default:
			return false, s, violation("after a faulted save, token %s is %s, neither the old %s nor the new %s",
				s.ID, describe(s), describe(pre), describe(op.Token))
		}
	}
	// An insert by a lookup rule: the store chose an ID the driver has not
	// seen. Look for it in GetTokens and through the rule itself (a token
	// reachable by its rule but missing from GetTokens is caught by check).
	var cands []tokencache.Token
	list, err := d.obs.GetTokens(ctx)
	d.stats.Calls++
	if err != nil {
		return false, tokencache.Token{}, fmt.Errorf("observer: GetTokens: %w", err)
	}
	for _, s := range list {
		if _, ok := d.toModel[s.ID]; !ok {
			cands = append(cands, s)
		}
	}
	q := op.Token
	q.Version = 0
	if s, err := d.obs.FindToken(ctx, q); err == nil {
		if _, ok := d.toModel[s.ID]; !ok && !containsID(cands, s.ID) {
			cands = append(cands, s)
		}
	} else if errClass(err) == "failure" {
		return false, tokencache.Token{}, fmt.Errorf("observer: FindToken: %w", err)
	}
	d.stats.Calls++
	switch {
	case len(cands) == 0:
		return false, tokencache.Token{}, nil
	case len(cands) > 1:
		return false, tokencache.Token{}, violation("a faulted insert left %d new tokens: %s and %s", len(cands), describe(cands[0]), describe(cands[1]))
	case !sameFields(cands[0], op.Token):
		return false, tokencache.Token{}, violation("a faulted insert of %s left an unknown token %s", describe(op.Token), describe(cands[0]))
	}
	return true, cands[0], nil
}

func containsID(ts []tokencache.Token, id string) bool {
	for _, t := range ts {
		if t.ID == id {
			return true
		}
	}
	return false
}
