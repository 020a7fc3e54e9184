package modelcheck

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tokencache/tokencache"
)

// raceCall is one call of a race: a save by user name, or the delete of
// the identity's current holder.
type raceCall struct {
	op  Op
	st  tokencache.Token // the store-side token of a save, with what it returned
	err error
}

// race runs two or three saves of one user+client identity, each through
// its own instance and at the same moment, sometimes together with the
// delete of the identity's current holder (an upsert racing a delete and
// a new login). The store's answers must come from some serial order: the
// saves that landed on one token carry consecutive revisions, a second
// token appears only after the delete, and at the end at most one token
// holds the identity. The order is read from the answers (token, then
// revision) and replayed on the model, which must agree with every answer.
// It does nothing when the model already has two holders of the identity
// it drew (moves by ID can make that): a race could not pin their order
// down.
func (d *driver) race() error {
	r := d.g.r
	user, client := pick(r, users), pick(r, clients)
	holders := 0
	var holder tokencache.Token
	for _, id := range d.liveIDs() {
		ctx, cancel := d.ctx()
		t, err := d.model.FindTokenByID(ctx, id)
		cancel()
		if err == nil && t.UserName == user && t.ClientID == client {
			holders++
			holder = t
		}
	}
	if holders > 1 {
		return nil
	}
	n := 2 + r.IntN(len(d.inst)-1)
	n = min(n, len(d.inst))
	perm := r.Perm(len(d.inst))
	var calls []*raceCall
	for i := range n {
		t := d.g.saveToken(tokencache.RuleUserName, "")
		t.UserName, t.ClientID = user, client
		if !t.Live(d.g.base) {
			t.Expiry = d.g.base.Add(2 * time.Hour) // a race of valid saves
		}
		calls = append(calls, &raceCall{op: Op{Kind: KindSave, Inst: perm[i], Token: t}})
	}
	if holders == 1 && chance(r, 0.5) {
		calls = append(calls, &raceCall{op: Op{Kind: KindDelete, Inst: perm[r.IntN(n)], ID: holder.ID}})
	}
	d.log("race of %d calls on %s/%s (holder %q):", len(calls), user, client, holder.ID)
	var start, done sync.WaitGroup
	start.Add(1)
	for _, c := range calls {
		c.st = d.toStore(c.op.Token)
		done.Add(1)
		go func() {
			defer done.Done()
			ctx, cancel := d.ctx()
			defer cancel()
			start.Wait()
			s := d.inst[c.op.Inst].store
			if c.op.Kind == KindSave {
				c.err = s.SaveToken(ctx, &c.st)
			} else {
				c.err = s.DeleteToken(ctx, d.sutID(c.op.ID))
			}
		}()
	}
	start.Done()
	done.Wait()
	d.stats.Calls += len(calls)
	d.stats.ByKind["race"]++

	// The serial order: saves of the old holder by revision, then the
	// delete, then saves of any other token by revision.
	oldID := ""
	if holders == 1 {
		oldID = d.sutID(holder.ID)
	}
	rank := func(c *raceCall) int {
		switch {
		case c.op.Kind == KindDelete:
			return 1
		case c.st.ID == oldID:
			return 0
		default:
			return 2
		}
	}
	for _, c := range calls {
		if c.err != nil {
			d.log("  %s -> store %s", opString(c.op), result(c.st, nil, c.err))
			return violation("a racing %s failed: %v", c.op.Kind, c.err)
		}
	}
	ids := map[string]bool{}
	deleted := false
	for _, c := range calls {
		if c.op.Kind == KindSave {
			ids[c.st.ID] = true
		} else {
			deleted = true
		}
	}
	if allowed := 1 + btoi(deleted); len(ids) > allowed {
		for _, c := range calls {
			d.log("  %s -> store %s", opString(c.op), result(c.st, nil, c.err))
		}
		return violation("racing saves of %s/%s made %d tokens for the one identity (the model allows %d)", user, client, len(ids), allowed)
	}
	slices.SortStableFunc(calls, func(a, b *raceCall) int {
		if x := cmp.Compare(rank(a), rank(b)); x != 0 {
			return x
		}
		return cmp.Compare(a.st.Version, b.st.Version)
	})
	for i, c := range calls {
		var got tokencache.Token
		if c.op.Kind == KindSave {
			got = c.st
		}
		if err := d.compare(c.op, got, nil, nil, fmt.Sprintf(" [race, serial position %d]", i+1)); err != nil {
			return err
		}
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
