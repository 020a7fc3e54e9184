package admin

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

func TestMemoryWithoutMemoryCommand(t *testing.T) {
	tg := redistest.New(t)
	if tg.Kind == redistest.Cluster {
		t.Skip("the hook is on a standalone client")
	}
	ns := redistest.Namespace(t)
	rdb := tg.Client(t)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns))
	t.Cleanup(func() { _ = store.DeleteTokens(context.Background()) })
	tok := tokencache.Token{UserName: "a", ClientID: "1000.M", AccessToken: "at", RefreshToken: "rt", Expiry: time.Now().Add(time.Hour)}
	if err := store.SaveToken(context.Background(), &tok); err != nil {
		t.Fatal(err)
	}
	// A client whose MEMORY commands fail as on a server that lacks them.
	rdb.AddHook(refuseMemory{})
	u, err := namespaceMemory(context.Background(), rdb, ns)
	if err != nil {
		t.Fatal(err)
	}
	if u.keys == 0 || u.bytes != 0 || !strings.Contains(u.note, "refused MEMORY USAGE") {
		t.Errorf("namespaceMemory = %+v, want keys, no bytes, and a note", u)
	}
	var b bytes.Buffer
	st := tokenStats{Namespace: ns, Tokens: 1, Keys: u.keys, MemoryNote: u.note}
	if err := st.writeText(&b, time.Minute); err != nil || !regexp.MustCompile(`redis memory: +n/a \(the server refused MEMORY USAGE`).MatchString(b.String()) {
		t.Errorf("writeText: %v\n%s", err, b.String())
	}
}

// refuseMemory answers every MEMORY command with the error of a server that
// does not know it.
type refuseMemory struct{}

func (refuseMemory) DialHook(next redis.DialHook) redis.DialHook { return next }
func (refuseMemory) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "memory" {
			cmd.SetErr(serverError("ERR unknown command 'MEMORY'"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (refuseMemory) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// serverError is an error reply of a Redis server (redis.Error).
type serverError string

func (e serverError) Error() string { return string(e) }
func (serverError) RedisError()     {}

func TestBytesIEC(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := bytesIEC(n); got != want {
			t.Errorf("bytesIEC(%d) = %q, want %q", n, got, want)
		}
	}
}
