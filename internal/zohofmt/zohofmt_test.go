package zohofmt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/sqltest"
	"github.com/tokencache/tokencache/internal/zohofmt"
	"github.com/tokencache/tokencache/memstore"
	"github.com/tokencache/tokencache/sqlstore"
)

// sdkCSV is a FileStore file as the Python SDK writes it: header, ids
// counting up, expiry_time in epoch milliseconds as a string, empty cells,
// and a token saved by refresh token only (no user_name).
const sdkCSV = "id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url,api_domain\r\n" +
	"1,alice@example.com,1000.CLIENT,sec-1,1000.refresh.a,1000.access.a,,1893456000000,https://app.example.com/cb,https://www.zohoapis.com\r\n" +
	"2,,1000.CLIENT,sec-1,1000.refresh.b,,,,https://app.example.com/cb,https://www.zohoapis.eu\r\n" +
	"3,bob@example.com,1000.CLIENT,sec-1,,,1000.grant.c,,,\r\n" +
	"4,\"x' OR '1'='1\",\"client,with,commas\",\"sec \"\"quoted\"\"\",r4,a4,,1893456000123,,\r\n"

func readAll(t *testing.T, input string) []zohofmt.Row {
	t.Helper()
	var rows []zohofmt.Row
	if err := zohofmt.ReadCSV(strings.NewReader(input), func(r zohofmt.Row) error {
		rows = append(rows, r)
		return nil
	}); err != nil {
		t.Fatalf("ReadCSV = %v", err)
	}
	return rows
}

func TestReadCSVAsTheSDKWritesIt(t *testing.T) {
	rows := readAll(t, sdkCSV)
	want := []tokencache.Token{
		{ID: "1", UserName: "alice@example.com", ClientID: "1000.CLIENT", ClientSecret: "sec-1", RefreshToken: "1000.refresh.a",
			AccessToken: "1000.access.a", Expiry: time.UnixMilli(1893456000000), RedirectURL: "https://app.example.com/cb", APIDomain: "https://www.zohoapis.com"},
		{ID: "2", ClientID: "1000.CLIENT", ClientSecret: "sec-1", RefreshToken: "1000.refresh.b",
			RedirectURL: "https://app.example.com/cb", APIDomain: "https://www.zohoapis.eu"},
		{ID: "3", UserName: "bob@example.com", ClientID: "1000.CLIENT", ClientSecret: "sec-1", GrantToken: "1000.grant.c"},
		{ID: "4", UserName: "x' OR '1'='1", ClientID: "client,with,commas", ClientSecret: `sec "quoted"`, RefreshToken: "r4", AccessToken: "a4",
			Expiry: time.UnixMilli(1893456000123)},
	}
	if len(rows) != len(want) {
		t.Fatalf("read %d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if r.Err != nil {
			t.Errorf("row %d: %v", i, r.Err)
			continue
		}
		if r.Line != i+2 || r.ID != want[i].ID {
			t.Errorf("row %d: line %d id %q, want line %d id %q", i, r.Line, r.ID, i+2, want[i].ID)
		}
		if !sameToken(r.Token, want[i]) {
			t.Errorf("row %d: got %#v\nwant %#v", i, r.Token, want[i])
		}
	}
}

func sameToken(a, b tokencache.Token) bool {
	ok := a.Expiry.Equal(b.Expiry)
	a.Expiry, b.Expiry = time.Time{}, time.Time{}
	return ok && a == b
}

func TestReadCSVOlderFormats(t *testing.T) {
	tests := []struct {
		name, input string
		want        tokencache.Token
	}{
		{"9 columns, no api_domain",
			"id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url\n" +
				"7,u@example.com,c,s,r,a,,1893456000000,https://cb\n",
			tokencache.Token{ID: "7", UserName: "u@example.com", ClientID: "c", ClientSecret: "s", RefreshToken: "r", AccessToken: "a",
				Expiry: time.UnixMilli(1893456000000), RedirectURL: "https://cb"}},
		{"user_mail and no id",
			"user_mail,client_id,refresh_token,access_token,grant_token,expiry_time\n" +
				"u@example.com,c,r,a,,\n",
			tokencache.Token{UserName: "u@example.com", ClientID: "c", RefreshToken: "r", AccessToken: "a"}},
		{"no header, 10 cells",
			"5,u,c,s,r,a,g,,https://cb,https://api\n",
			tokencache.Token{ID: "5", UserName: "u", ClientID: "c", ClientSecret: "s", RefreshToken: "r", AccessToken: "a", GrantToken: "g",
				RedirectURL: "https://cb", APIDomain: "https://api"}},
		{"expiry_time written as a float",
			"id,user_name,client_id,refresh_token,expiry_time\n3,u,c,r,1893456000000.0\n",
			tokencache.Token{ID: "3", UserName: "u", ClientID: "c", RefreshToken: "r", Expiry: time.UnixMilli(1893456000000)}},
		{"byte order mark, blank lines, extra column",
			"\ufeffid,user_name,client_id,refresh_token,comment\n\n9,u,c,r,anything\n\n",
			tokencache.Token{ID: "9", UserName: "u", ClientID: "c", RefreshToken: "r"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows := readAll(t, tc.input)
			if len(rows) != 1 || rows[0].Err != nil {
				t.Fatalf("rows = %+v, want one good row", rows)
			}
			if !sameToken(rows[0].Token, tc.want) {
				t.Errorf("got %#v\nwant %#v", rows[0].Token, tc.want)
			}
		})
	}
}

func TestReadCSVBadRowsAreNamedAndTheRestRead(t *testing.T) {
	input := "id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url,api_domain\n" +
		"1,a,c,s,r1,a1,,1893456000000,,\n" + // line 2: good
		"2,b,c,s,r2,,,soon,,\n" + // line 3: expiry_time not a number
		"3,c,c,s,,,,,,\n" + // line 4: no secret
		"4 4,d,c,s,r4,,,,,\n" + // line 5: bad id
		"5,e,c,s,r5\n" + // line 6: too few cells
		"6,\"f,c,s,r6,,,,,\n" + // line 7: unterminated quote swallows the rest... csv reports it
		""
	rows := readAll(t, input)
	if len(rows) < 5 {
		t.Fatalf("read %d rows, want at least 5: %+v", len(rows), rows)
	}
	if rows[0].Err != nil || rows[0].Token.ID != "1" {
		t.Errorf("line 2: %+v, want the good token 1", rows[0])
	}
	wantBad := map[int]string{3: "expiry_time", 4: "no access_token", 5: "id", 6: "cells"}
	for _, r := range rows[1:] {
		if !errors.Is(r.Err, zohofmt.ErrBadRow) {
			t.Errorf("line %d: err %v, want ErrBadRow", r.Line, r.Err)
			continue
		}
		if part, ok := wantBad[r.Line]; ok && !strings.Contains(r.Err.Error(), part) {
			t.Errorf("line %d: err %q, want it to mention %q", r.Line, r.Err, part)
		}
		for _, secret := range []string{"soon", "r2", "r4", "r5", "r6"} {
			if strings.Contains(r.Err.Error(), secret) {
				t.Errorf("line %d: err %q quotes a cell", r.Line, r.Err)
			}
		}
		delete(wantBad, r.Line)
	}
	if len(wantBad) != 0 {
		t.Errorf("bad rows not reported: lines %v", wantBad)
	}
}

func TestReadCSVBadFiles(t *testing.T) {
	for name, input := range map[string]string{
		"empty":        "",
		"not a header": "just,three,cells\n",
	} {
		err := zohofmt.ReadCSV(strings.NewReader(input), func(zohofmt.Row) error { return nil })
		if !errors.Is(err, zohofmt.ErrBadFile) {
			t.Errorf("%s: ReadCSV = %v, want ErrBadFile", name, err)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := zohofmt.ReadCSV(strings.NewReader(sdkCSV), func(zohofmt.Row) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ReadCSV with a failing callback = %v after %d calls, want stop after 1", err, calls)
	}
}

// TestCSVRoundTripThroughAStore imports the SDK's file into a store, exports
// the store, and reads the export back: the same tokens, the same IDs.
func TestCSVRoundTripThroughAStore(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	for _, r := range readAll(t, sdkCSV) {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Name("line"), r.Err)
		}
		tok := r.Token
		if err := store.SaveToken(ctx, &tok); err != nil {
			t.Fatalf("%s: SaveToken = %v", r.Name("line"), err)
		}
		if tok.ID != r.ID {
			t.Errorf("%s: imported as ID %s, want the Zoho ID kept", r.Name("line"), tok.ID)
		}
	}
	// The refresh-only token keeps its identity: found by refresh token and
	// client, with no user name made up.
	got, err := store.FindToken(ctx, tokencache.Token{RefreshToken: "1000.refresh.b", ClientID: "1000.CLIENT"})
	if err != nil || got.ID != "2" || got.UserName != "" {
		t.Errorf("refresh-only token: %v, %v; want ID 2 without a user name", got, err)
	}

	all, err := store.GetTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b tokencache.Token) int { return strings.Compare(a.ID, b.ID) })
	var buf bytes.Buffer
	if err := zohofmt.WriteCSV(&buf, all); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), strings.Join(zohofmt.Columns, ",")+"\n") {
		t.Errorf("export header: %q", strings.SplitN(buf.String(), "\n", 2)[0])
	}
	back := readAll(t, buf.String())
	if len(back) != len(all) {
		t.Fatalf("read back %d rows, want %d", len(back), len(all))
	}
	for i, r := range back {
		want := all[i]
		want.Version = 0
		if r.Err != nil || !sameToken(r.Token, want) {
			t.Errorf("round trip %d: %#v, %v\nwant %#v", i, r.Token, r.Err, want)
		}
	}
}

// sdkTableDDL is the DBStore table as the Zoho SDKs document it for MySQL,
// and as Kaizen-style SQLite stores create it: id varchar(10), every column
// varchar.
const sdkTableDDL = `CREATE TABLE %s (
  id varchar(10) NOT NULL,
  user_name varchar(255),
  client_id varchar(255),
  client_secret varchar(255),
  refresh_token varchar(255),
  access_token varchar(255),
  grant_token varchar(255),
  expiry_time varchar(20),
  redirect_url varchar(255),
  api_domain varchar(255),
  primary key (id)
)`

func TestReadDB(t *testing.T) {
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := tg.DSN(t)
			db, dialect, err := sqlstore.OpenDB(ctx, dsn)
			if err != nil {
				if tg.Name != "sqlite" && !sqltest.Required() {
					t.Skipf("%s: %v", tg.Name, err)
				}
				t.Fatal(err)
			}
			defer db.Close()
			table := sqltest.Table(t)
			quoted, err := sqlstore.QuoteIdentifier(dialect, table)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, fmt.Sprintf(sdkTableDDL, quoted)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE "+quoted) })
			ph := func(n int) string { // the test's own inserts, with placeholders
				if dialect == "postgres" {
					return fmt.Sprintf("$%d", n)
				}
				return "?"
			}
			insert := "INSERT INTO " + quoted + " (id, user_name, client_id, client_secret, refresh_token, access_token, grant_token, expiry_time, redirect_url, api_domain) VALUES ("
			for i := 1; i <= 10; i++ {
				if i > 1 {
					insert += ", "
				}
				insert += ph(i)
			}
			insert += ")"
			null := any(nil)
			for _, r := range [][]any{
				{"1", "alice@example.com", "1000.CLIENT", "sec", "1000.refresh.a", "1000.access.a", null, "1893456000000", "https://cb", "https://www.zohoapis.com"},
				{"2", null, "1000.CLIENT", "sec", "1000.refresh.b", null, null, null, null, null},
				{"3", "x' OR '1'='1", "1000.CLIENT", "sec", null, null, "1000.grant.c", "", "", ""},
				{"4", "broken", "1000.CLIENT", "sec", "r4", null, null, "tomorrow", null, null},
			} {
				if _, err := db.ExecContext(ctx, insert, r...); err != nil {
					t.Fatal(err)
				}
			}

			got := map[string]zohofmt.Row{}
			err = zohofmt.ReadDB(ctx, dsn, table, func(r zohofmt.Row) error {
				got[r.ID] = r
				return nil
			})
			if err != nil {
				t.Fatalf("ReadDB = %v", err)
			}
			if len(got) != 4 {
				t.Fatalf("ReadDB read %d rows, want 4", len(got))
			}
			want := map[string]tokencache.Token{
				"1": {ID: "1", UserName: "alice@example.com", ClientID: "1000.CLIENT", ClientSecret: "sec", RefreshToken: "1000.refresh.a",
					AccessToken: "1000.access.a", Expiry: time.UnixMilli(1893456000000), RedirectURL: "https://cb", APIDomain: "https://www.zohoapis.com"},
				"2": {ID: "2", ClientID: "1000.CLIENT", ClientSecret: "sec", RefreshToken: "1000.refresh.b"},
				"3": {ID: "3", UserName: "x' OR '1'='1", ClientID: "1000.CLIENT", ClientSecret: "sec", GrantToken: "1000.grant.c"},
			}
			for id, w := range want {
				if r := got[id]; r.Err != nil || !sameToken(r.Token, w) {
					t.Errorf("id %s: %#v, %v\nwant %#v", id, r.Token, r.Err, w)
				}
			}
			if r := got["4"]; !errors.Is(r.Err, zohofmt.ErrBadRow) || !strings.Contains(r.Name("row"), "id 4") {
				t.Errorf("id 4 with a bad expiry_time: %v (%s), want ErrBadRow naming id 4", r.Err, r.Name("row"))
			}

			// Into a store and back out as the FileStore CSV: the same tokens.
			store := memstore.New()
			for _, id := range []string{"1", "2", "3"} {
				tok := got[id].Token
				if err := store.SaveToken(ctx, &tok); err != nil {
					t.Fatalf("importing id %s: %v", id, err)
				}
			}
			exported, err := store.GetTokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := zohofmt.WriteCSV(&buf, exported); err != nil {
				t.Fatal(err)
			}
			for _, r := range readAll(t, buf.String()) {
				if w, ok := want[r.ID]; !ok || r.Err != nil || !sameToken(r.Token, w) {
					t.Errorf("exported id %s: %#v, %v\nwant %#v", r.ID, r.Token, r.Err, w)
				}
			}

			// Bad table names are refused before any SQL is sent.
			for _, bad := range []string{"oauthtoken; DROP TABLE x", "a-b", "x' OR '1'='1", ""} {
				if bad == "" {
					continue // "" means the default table, which does not exist here
				}
				if err := zohofmt.ReadDB(ctx, dsn, bad, func(zohofmt.Row) error { return nil }); !errors.Is(err, sqlstore.ErrBadOption) {
					t.Errorf("ReadDB(table %q) = %v, want ErrBadOption", bad, err)
				}
			}
			// A table that is not a DBStore table.
			if err := zohofmt.ReadDB(ctx, dsn, sqlstore.SchemaTable, func(zohofmt.Row) error { return nil }); err == nil {
				t.Errorf("ReadDB of a table without token columns = nil, want an error")
			}
		})
	}
}
