package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/redisstore"
)

// TestCLIAndApplicationShareTokens: the command line and an application
// configured with the same namespace and index key see the same tokens and
// never make two for one identity; purge leaves no key of the namespace.
func TestCLIAndApplicationShareTokens(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	key := "an index key of the application, 32+ bytes long....."
	keyFile := filepath.Join(t.TempDir(), "index.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	app := redisstore.New(e.tg.Client(t), redisstore.WithNamespace(e.ns), redisstore.WithIndexKey([]byte(key)))
	withKey := func(args ...string) runResult {
		t.Helper()
		return e.run(t, "", withStoreFlags(args, "--index-key-file", keyFile)...)
	}
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	// The CLI imports alice; the application finds her by user and client.
	line := fmt.Sprintf(`{"user_name":"alice","client_id":"1000.K","access_token":"%s-a1","refresh_token":"%s-r1","expiry":%q}`, secretMark, secretMark, exp)
	r := e.run(t, line+"\n", withStoreFlags([]string{"import"}, "--index-key-file", keyFile)...)
	wantCode(t, "import with the index key", r, 0)
	imported, err := app.FindToken(ctx, tokencache.Token{UserName: "alice", ClientID: "1000.K"})
	if err != nil {
		t.Fatalf("the application does not find the token the CLI imported: %v", err)
	}
	// The application logs alice in again (no ID, as the Zoho SDK saves):
	// the same token is updated, not a second one made.
	again := tokencache.Token{UserName: "alice", ClientID: "1000.K", AccessToken: secretMark + "-a2", RefreshToken: secretMark + "-r2", Expiry: time.Now().Add(time.Hour)}
	if err := app.SaveToken(ctx, &again); err != nil {
		t.Fatal(err)
	}
	if again.ID != imported.ID {
		t.Errorf("the application's save made token %s beside the imported %s", again.ID, imported.ID)
	}
	bob := tokencache.Token{UserName: "bob", ClientID: "1000.K", AccessToken: secretMark + "-b", Expiry: time.Now().Add(time.Hour)}
	if err := app.SaveToken(ctx, &bob); err != nil {
		t.Fatal(err)
	}
	// The CLI finds the application's tokens by user, and lists both.
	r = withKey("show", "--user", "bob", "--client", "1000.K", "--json")
	wantCode(t, "show --user with the index key", r, 0)
	if !strings.Contains(r.stdout, bob.ID) {
		t.Errorf("show --user bob: %s", r.stdout)
	}
	r = withKey("list", "--no-headers")
	wantCode(t, "list", r, 0)
	if n := strings.Count(r.stdout, "\n"); n != 2 {
		t.Errorf("list shows %d tokens, want 2:\n%s", n, r.stdout)
	}
	// Without the key the CLI cannot find tokens by user: the settings matter.
	oneLineError(t, "show --user without the key", e.run(t, "", "show", "--user", "bob", "--client", "1000.K"), cli.ExitNotFound)
	// And with the key in the environment, as for the application.
	t.Setenv(cli.EnvIndexKey, key)
	wantCode(t, "show --user with "+cli.EnvIndexKey, e.run(t, "", "show", "--user", "alice", "--client", "1000.K"), 0)
	t.Setenv(cli.EnvIndexKey, "")

	r = withKey("purge", "--yes")
	wantCode(t, "purge", r, 0)
	if keys := tokenKeys(t, e.rdb, e.ns); len(keys) != 0 {
		t.Errorf("purge left keys of the namespace: %v", keys)
	}
}

// TestRefreshRetentionSetting: --refresh-retention gives imported tokens
// the lifetime the application's WithRefreshRetention would.
func TestRefreshRetentionSetting(t *testing.T) {
	e := newAdminEnv(t)
	exp := time.Now().Add(time.Minute)
	line := fmt.Sprintf(`{"id":"ret","user_name":"u","client_id":"c","access_token":"%s-a","refresh_token":"%s-r","expiry":%q}`,
		secretMark, secretMark, exp.UTC().Format(time.RFC3339))
	wantCode(t, "import", e.run(t, line+"\n", "import", "--refresh-retention", "1h"), 0)
	ttl, err := e.rdb.TTL(context.Background(), e.store.HashKey("ret")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > time.Hour+2*time.Minute {
		t.Errorf("TTL %v with --refresh-retention 1h, want about 1h1m (default retention is 90 days)", ttl)
	}
}

// TestIndexKeyRotation follows the README's rotation procedure: tokens
// indexed without a key, then with key A, move to key B with reindex, and
// are found by user under B alone afterwards.
func TestIndexKeyRotation(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := func(name, key string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(key), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := keyFile("a", "key A, 32 bytes or more of it......"), keyFile("b", "key B, 32 bytes or more of it......")
	for _, u := range []string{"u1", "u2", "u3"} {
		e.save(t, fullToken(u, "1000.R", time.Now().Add(time.Hour))) // plain SHA-256 digests
	}
	show := func(extra ...string) int {
		t.Helper()
		return e.run(t, "", withStoreFlags([]string{"show", "--user", "u2", "--client", "1000.R"}, extra...)...).code
	}
	if code := show("--index-key-file", a); code != cli.ExitNotFound {
		t.Fatalf("under a new key without the previous one: exit %d, want 3", code)
	}
	if code := show("--index-key-file", a, "--previous-plain-index"); code != 0 {
		t.Fatalf("with --previous-plain-index: exit %d, want 0", code)
	}
	r := e.run(t, "", "reindex", "--index-key-file", a, "--previous-plain-index")
	wantCode(t, "reindex to A", r, 0)
	if !strings.Contains(r.stdout, "reindexed 3 tokens") {
		t.Errorf("reindex said %q", r.stdout)
	}
	if code := show("--index-key-file", a); code != 0 {
		t.Errorf("under A after reindex: exit %d, want 0", code)
	}
	// A to B, with the key files in the environment as a fleet has them.
	t.Setenv(cli.EnvIndexKeyFile, b)
	t.Setenv(cli.EnvPreviousIndexFiles, a)
	wantCode(t, "reindex to B", e.run(t, "", "reindex"), 0)
	t.Setenv(cli.EnvPreviousIndexFiles, "")
	if code := show(); code != 0 {
		t.Errorf("under B alone after reindex: exit %d, want 0", code)
	}
	app := redisstore.New(e.tg.Client(t), redisstore.WithNamespace(e.ns), redisstore.WithIndexKey([]byte("key B, 32 bytes or more of it......")))
	if _, err := app.FindToken(ctx, tokencache.Token{UserName: "u3", ClientID: "1000.R"}); err != nil {
		t.Errorf("an application with key B: %v", err)
	}
	oneLineError(t, "previous key without a current one", e.run(t, "", "list", "--index-key-file", "", "--previous-plain-index"), cli.ExitUsage)
}
