package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the SDK-shaped table of the zoho-db test

	"github.com/tokencache/tokencache/internal/cli"
)

// zohoCSV is a FileStore file as the Zoho Python SDK writes it, with one
// bad row (an expiry that is not epoch milliseconds) and a token saved by
// refresh token only.
const zohoCSV = "id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url,api_domain\r\n" +
	"1,alice@example.com,1000.Z,SECRET-cs,SECRET-r1,SECRET-a1,,4102444800000,https://app.example.com/cb,https://www.zohoapis.eu\r\n" +
	"2,,1000.Z,SECRET-cs,SECRET-r2,,,,https://app.example.com/cb,https://www.zohoapis.eu\r\n" +
	"3,bob@example.com,1000.Z,SECRET-cs,SECRET-r3,SECRET-a3,,tomorrow,,\r\n"

func TestZohoCSVImportExport(t *testing.T) {
	e := newAdminEnv(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "sdk_tokens.txt")
	if err := os.WriteFile(in, []byte(zohoCSV), 0o600); err != nil {
		t.Fatal(err)
	}

	// --dry-run: what would change, nothing written.
	r := e.run(t, "", "import", "--format", "zoho-csv", "--dry-run", in)
	wantCode(t, "dry run with a bad row", r, cli.ExitFailure)
	noSecrets(t, "dry run", r)
	for _, want := range []string{"line 2 (id 1): create 1 for user alice@example.com", "line 3 (id 2): create 2 for user -"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "line 4 (id 3): ") || !strings.Contains(r.stderr, "expiry_time") {
		t.Errorf("the bad row is not named:\n%s", r.stderr)
	}
	if n := e.count(t); n != 0 {
		t.Fatalf("a dry run wrote %d tokens", n)
	}

	// The import: the good rows, Zoho IDs kept; the bad one named.
	r = e.run(t, "", "import", "--format", "zoho-csv", in)
	wantCode(t, "import with a bad row", r, cli.ExitFailure)
	noSecrets(t, "import", r)
	for _, id := range []string{"1", "2"} {
		if _, err := e.store.FindTokenByID(context.Background(), id); err != nil {
			t.Errorf("Zoho ID %s: %v", id, err)
		}
	}
	if n := e.count(t); n != 2 {
		t.Errorf("%d tokens imported, want 2", n)
	}
	// Again with --dry-run: nothing would change.
	r = e.run(t, "", "import", "--format", "zoho-csv", "--dry-run", in)
	if r.stdout != "" || !strings.Contains(r.stderr, "0 of 3 records would change") {
		t.Errorf("a dry run after the import: stdout %q, stderr %q", r.stdout, r.stderr)
	}

	// Back out, and into another namespace: the same tokens.
	out := filepath.Join(dir, "back.csv")
	wantCode(t, "export zoho-csv", e.run(t, "", "export", "--format", "zoho-csv", "--include-secrets", "-o", out), 0)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url,api_domain") ||
		!strings.Contains(string(data), "SECRET-r2") || !strings.Contains(string(data), "4102444800000") {
		t.Errorf("export:\n%s", data)
	}
	other := newAdminEnvOn(t, e.tg)
	wantCode(t, "re-import", other.run(t, "", "import", "--format", "zoho-csv", out), 0)
	for _, id := range []string{"1", "2"} {
		a, err1 := e.store.FindTokenByID(context.Background(), id)
		b, err2 := other.store.FindTokenByID(context.Background(), id)
		if err1 != nil || err2 != nil || !sameToken(a, b) {
			t.Errorf("token %s after the round trip: %v %v\n%v\n%v", id, err1, err2, a, b)
		}
	}
}

func TestZohoDBImport(t *testing.T) {
	e := newAdminEnv(t)
	path := filepath.Join(t.TempDir(), "zoho.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The Kaizen-style table: id varchar(10), every column varchar.
	if _, err := db.Exec(`CREATE TABLE oauthtoken (id varchar(10) NOT NULL, user_name varchar(255), client_id varchar(255),
		client_secret varchar(255), refresh_token varchar(255), access_token varchar(255), grant_token varchar(255),
		expiry_time varchar(20), redirect_url varchar(255), api_domain varchar(255), primary key (id))`); err != nil {
		t.Fatal(err)
	}
	for _, row := range [][]any{
		{"1", "alice@example.com", "1000.Z", "SECRET-cs", "SECRET-r1", "SECRET-a1", nil, "4102444800000", "https://app.example.com/cb", "https://www.zohoapis.com"},
		{"2", "x' OR '1'='1", "1000.Z", "SECRET-cs", "SECRET-r2", nil, nil, nil, nil, nil},
		{"bad id!", "eve", "1000.Z", "SECRET-cs", "SECRET-r3", nil, nil, nil, nil, nil},
	} {
		if _, err := db.Exec(`INSERT INTO oauthtoken VALUES (?,?,?,?,?,?,?,?,?,?)`, row...); err != nil {
			t.Fatal(err)
		}
	}
	r := e.run(t, "", "import", "--format", "zoho-db", "--from", "sqlite:"+path)
	wantCode(t, "import zoho-db with a bad row", r, cli.ExitFailure)
	noSecrets(t, "import zoho-db", r)
	if !strings.Contains(r.stderr, "row 3: ") || !strings.Contains(r.stderr, "imported 2 tokens") {
		t.Errorf("import zoho-db:\n%s", r.stderr)
	}
	tok, err := e.store.FindTokenByID(context.Background(), "2")
	if err != nil || tok.UserName != "x' OR '1'='1" {
		t.Errorf("the user name with quotes: %v, %q", err, tok.UserName)
	}
	oneLineError(t, "bad DSN", e.run(t, "", "import", "--format", "zoho-db", "--from", "oracle://x"), cli.ExitUsage)
	oneLineError(t, "no --from", e.run(t, "", "import", "--format", "zoho-db"), cli.ExitUsage)
	oneLineError(t, "unreachable database", e.run(t, "", "import", "--format", "zoho-db", "--from", "mysql://root@127.0.0.1:7399/zoho"), cli.ExitUnreachable)
}
