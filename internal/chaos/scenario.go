package chaos

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tokencache/tokencache/internal/faultproxy"
)

// Scenario is one fault experiment. Its gates say what the issues require
// of it; Gate (or CHAOS_GATE) decides which scenarios' gates are enforced.
type Scenario struct {
	Name  string // short name, used by -only and CHAOS_GATE
	Title string // what is done, for the table

	GateLost  bool // 0 users lost is required
	GateValid bool // 0 calls failed while the user had a valid token is required
	GateRatio bool // 1.0 refresh per expiry is required

	Persist Persistence // how the scenario's Redis persists
	Durable bool        // the workers' store is redisstore in front of a SQLite record
	Victim  string      // the victim mode of worker 0, if any
	Full    bool        // left out of the CI version (-short)

	// fault injects the faults, in a bounded time; short selects the CI
	// version.
	fault func(e *env, short bool) error
}

// count returns full, or short in the CI version.
func count(short bool, full, shortN int) int {
	if short {
		return shortN
	}
	return full
}

// Scenarios returns every scenario, in the order of the table.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "baseline", Title: "no fault", GateLost: true, GateRatio: true, fault: baseline},
		{Name: "cuts", Title: "all connections cut every 1–3 s", GateLost: true, GateValid: true, fault: cuts},
		{Name: "stall-3s", Title: "one 3 s stall while a refresh is at the server", GateLost: true, GateValid: true, fault: stalls(3*time.Second, 1, 1)},
		{Name: "stall-6s", Title: "6 s stalls while a refresh is at the server (×3; CI ×1)", GateLost: true, GateValid: true, fault: stalls(6*time.Second, 3, 1)},
		{Name: "refuse", Title: "Redis refuses connections 2 s while a refresh is at the server (×3; CI ×1)", GateLost: true, GateValid: true, fault: refuse},
		{Name: "sigstop-holder", Title: "holder SIGSTOPped 12 s (> 10 s lock TTL) while its refresh is at the server (×2; CI ×1)", GateLost: true, fault: sigstop},
		{Name: "kill-after-lock", Title: "holder SIGKILLed right after it took the lock (×2; CI ×1)", GateLost: true, Victim: VictimAfterLock, fault: killVictim},
		{Name: "kill-before-send", Title: "holder SIGKILLed when it calls the endpoint, before the request leaves (×2; CI ×1)", GateLost: true, Victim: VictimBeforeSend, fault: killVictim},
		{Name: "kill-random", Title: "a random worker SIGKILLed every 2–4 s, never while a request of it is at the server or within 0.5 s after the server answered it (×11; CI ×3)", GateLost: true, fault: killRandom},
		{Name: "kill-after-answer", Title: "holder SIGKILLed right after the server answered (×3; not gated)", Full: true, fault: killAfterAnswer},
		{Name: "restart", Title: "Redis restarted without persistence, durable record on SQLite", GateLost: true, Durable: true, fault: restart},
		{Name: "restart-norecord", Title: "Redis restarted without persistence, no durable record (not gated)", Full: true, fault: restart},
		{Name: "rollback", Title: "Redis rolled back 1 s (AOF everysec copy restored), durable record on SQLite", GateLost: true, Persist: AOFEverySec, Durable: true, fault: rollback},
		{Name: "rollback-norecord", Title: "Redis rolled back 1 s (AOF everysec copy restored), no durable record (not gated)", Persist: AOFEverySec, Full: true, fault: rollback},
	}
}

func baseline(e *env, short bool) error {
	return e.sleep(time.Duration(count(short, 20, 5)) * time.Second)
}

func cuts(e *env, short bool) error {
	end := time.Now().Add(time.Duration(count(short, 20, 6)) * time.Second)
	for time.Now().Before(end) {
		if err := e.sleep(time.Second + time.Duration(rand.Int64N(int64(2*time.Second)))); err != nil {
			return err
		}
		n := e.proxy.Cut()
		e.logf("cut %d connections", n)
		e.faultEnded(time.Now())
	}
	return nil
}

func stalls(d time.Duration, full, short int) func(*env, bool) error {
	return func(e *env, isShort bool) error {
		for i := range count(isShort, full, short) {
			arr, err := e.auth.nextArrival(e.ctx, 10*time.Second)
			if err != nil {
				return err
			}
			if err := e.proxy.Set("stall", faultproxy.Stall()); err != nil {
				return err
			}
			e.logf("stall %d of %v at a refresh for %s", i+1, d, arr.user)
			if err := e.sleep(d); err != nil {
				return err
			}
			if err := e.proxy.Remove("stall"); err != nil {
				return err
			}
			e.faultEnded(time.Now())
			if err := e.pause(3 * time.Second); err != nil {
				return err
			}
		}
		return nil
	}
}

func refuse(e *env, short bool) error {
	for i := range count(short, 3, 1) {
		arr, err := e.auth.nextArrival(e.ctx, 10*time.Second)
		if err != nil {
			return err
		}
		if err := e.proxy.Set("refuse", faultproxy.Refuse()); err != nil {
			return err
		}
		n := e.proxy.Cut()
		e.logf("refusal %d (cut %d) at a refresh for %s", i+1, n, arr.user)
		if err := e.sleep(2 * time.Second); err != nil {
			return err
		}
		if err := e.proxy.Remove("refuse"); err != nil {
			return err
		}
		e.faultEnded(time.Now())
		if err := e.pause(4 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

func sigstop(e *env, short bool) error {
	for i := range count(short, 2, 1) {
		var p *proc
		var arr arrival
		for tries := 0; p == nil && tries < 20; tries++ {
			var err error
			if arr, err = e.auth.nextArrival(e.ctx, 10*time.Second); err != nil {
				return err
			}
			p = e.fleet.byPID(arr.pid)
		}
		if p == nil {
			return fmt.Errorf("chaos: no refresh from a known worker")
		}
		e.fleet.signal(p, syscall.SIGSTOP)
		e.logf("SIGSTOP %d of worker %d (pid %d) at its refresh for %s", i+1, p.n, p.pid, arr.user)
		err := e.sleep(12 * time.Second)
		e.fleet.signal(p, syscall.SIGCONT)
		if err != nil {
			return err
		}
		e.faultEnded(time.Now())
		if err := e.pause(3 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

// killVictim arms the victim worker, waits for it to kill itself at its
// point, and measures how long until somebody sends a refresh for its user.
func killVictim(e *env, short bool) error {
	for i := range count(short, 2, 1) {
		victim := e.victim
		e.fleet.signal(victim, syscall.SIGUSR1)
		select {
		case <-victim.exited:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("chaos: the armed victim did not die within 30s")
		case <-e.ctx.Done():
			return e.ctx.Err()
		}
		d, ok := e.lastDeath()
		if !ok {
			return fmt.Errorf("chaos: the victim died without saying where")
		}
		at := time.UnixMilli(d.T)
		user := d.User
		if user == "" {
			user = e.ids[d.ID]
		}
		e.logf("victim %d (pid %d) died %s, user %q", victim.n, victim.pid, d.Mode, user)
		e.faultEnded(at)
		repl, err := e.fleet.start(e.scn.Victim)
		if err != nil {
			return err
		}
		e.victim = repl
		if user != "" {
			// The CI version waits the lock TTL and a little more; the full
			// one outlasts an in-flight record with the default refresh timeout.
			bound := 50 * time.Second
			if short {
				bound = e.cfg.LockTTL + 2*time.Second
			}
			e.awaitTakeover(user, at, bound)
		}
		if i+1 < count(short, 2, 1) {
			if err := e.sleep(2 * time.Second); err != nil {
				return err
			}
		}
	}
	return nil
}

func killRandom(e *env, short bool) error {
	for i := range count(short, 11, 3) {
		if err := e.sleep(2*time.Second + time.Duration(rand.Int64N(int64(2*time.Second)))); err != nil {
			return err
		}
		p, err := e.quietWorker()
		if err != nil {
			return err
		}
		e.fleet.kill(p)
		e.logf("SIGKILL %d of worker %d (pid %d)", i+1, p.n, p.pid)
		e.faultEnded(time.Now())
		if _, err := e.fleet.start(""); err != nil {
			return err
		}
	}
	return nil
}

// quietGap is how long ago a worker's last refresh answer must be for
// kill-random to pick it: a kill between the server's answer and the save
// loses the successor whatever the client does (kill-after-answer measures
// that window, reported), so the gated scenario kills outside it.
const quietGap = 500 * time.Millisecond

// quietWorker picks a random worker whose last refresh answer is at least
// quietGap old, looking for at most 10 s; then the quietest one.
func (e *env) quietWorker() (*proc, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		alive := e.fleet.alive()
		if len(alive) == 0 {
			return nil, fmt.Errorf("chaos: no worker left")
		}
		rand.Shuffle(len(alive), func(i, j int) { alive[i], alive[j] = alive[j], alive[i] })
		oldest := alive[0]
		for _, p := range alive {
			last := e.auth.lastAnswer(p.pid)
			if time.Since(last) >= quietGap {
				return p, nil
			}
			if last.Before(e.auth.lastAnswer(oldest.pid)) {
				oldest = p
			}
		}
		if time.Now().After(deadline) {
			return oldest, nil
		}
		if err := e.sleep(10 * time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func killAfterAnswer(e *env, short bool) error {
	for i := range count(short, 3, 1) {
		var armed atomic.Bool
		armed.Store(true)
		killed := make(chan *proc, 1)
		e.auth.setOnAnswer(func(a arrival, status int) {
			if status != 200 || !armed.Load() {
				return
			}
			if p := e.fleet.byPID(a.pid); p != nil && armed.CompareAndSwap(true, false) {
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				killed <- p
			}
		})
		var p *proc
		select {
		case p = <-killed:
		case <-time.After(15 * time.Second):
			e.auth.setOnAnswer(nil)
			return fmt.Errorf("chaos: no refresh answered within 15s")
		case <-e.ctx.Done():
			e.auth.setOnAnswer(nil)
			return e.ctx.Err()
		}
		e.auth.setOnAnswer(nil)
		<-p.exited
		e.logf("SIGKILL %d of worker %d (pid %d) after the server answered its refresh", i+1, p.n, p.pid)
		e.faultEnded(time.Now())
		if _, err := e.fleet.start(""); err != nil {
			return err
		}
		if err := e.pause(3 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

func restart(e *env, short bool) error {
	if err := e.sleep(2 * time.Second); err != nil {
		return err
	}
	e.snapshot("before the kill", false)
	e.redis.kill()
	e.logf("Redis killed")
	if err := e.redis.start(); err != nil {
		return err
	}
	e.logf("Redis restarted without persistence")
	e.snapshot("after the restart", true)
	e.faultEnded(time.Now())
	return nil
}

func rollback(e *env, short bool) error {
	if err := e.sleep(2 * time.Second); err != nil {
		return err
	}
	cp := filepath.Join(e.tmp, "aof-copy")
	if err := e.redis.snapshotAOF(cp); err != nil {
		return err
	}
	e.logf("AOF copied")
	if err := e.sleep(time.Second); err != nil {
		return err
	}
	e.snapshot("before the kill", false)
	e.redis.kill()
	e.logf("Redis killed")
	if err := e.redis.restoreAOF(cp); err != nil {
		return err
	}
	if err := e.redis.start(); err != nil {
		return err
	}
	e.logf("Redis rolled back to the AOF of a second earlier")
	e.snapshot("after the rollback", true)
	e.faultEnded(time.Now())
	return nil
}
