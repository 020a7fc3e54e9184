package scalebench_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

// envPopulate names how many tokens TestPopulate adds.
const envPopulate = "TOKENCACHE_SCALE_POPULATE"

// TestPopulate adds TOKENCACHE_SCALE_POPULATE tokens of the measurement's
// population to REDIS_URL, in the default namespace, and leaves them there:
// scripts/bench-export.sh uses it to fill a private Redis before it runs
// the built tokencache binary against it.
func TestPopulate(t *testing.T) {
	v := os.Getenv(envPopulate)
	if v == "" {
		t.Skipf("set %s=N (scripts/bench-export.sh) to add N tokens to a private Redis", envPopulate)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", envPopulate, v)
	}
	tg := redistest.New(t)
	if tg.Kind == redistest.Mini {
		t.Skip("needs a real, private Redis: scripts/bench-export.sh starts one")
	}
	took := populate(t, redisstore.New(tg.Client(t)), newPopulation(), 0, n)
	t.Logf("added %d tokens in %v", n, took)
}
