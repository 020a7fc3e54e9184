package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/sqltest"
	"github.com/tokencache/tokencache/sqlstore"
)

// BenchmarkStore measures the record's own operations on each target: a
// lookup by user and by ID, and a refresher's save (by ID with Version, the
// one conditional UPDATE). SQLite's file is under TMPDIR, so running with
// TMPDIR on a tmpfs shows what the commit's fsync costs.
func BenchmarkStore(b *testing.B) {
	for _, tg := range sqltest.Targets(b) {
		b.Run(tg.Name, func(b *testing.B) {
			s := sqltest.Open(b, tg, sqlstore.WithCleanupInterval(0))
			ctx := context.Background()
			toks := make([]tokencache.Token, 200)
			for i := range toks {
				toks[i] = tokencache.Token{UserName: fmt.Sprintf("user-%d@example.com", i), ClientID: "1000.CLIENT",
					RefreshToken: fmt.Sprint("refresh-", i), AccessToken: fmt.Sprint("access-", i), Expiry: time.Now().Add(time.Hour)}
				if err := s.SaveToken(ctx, &toks[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("FindToken_by_user", func(b *testing.B) {
				i := 0
				for b.Loop() {
					t := toks[i%len(toks)]
					if _, err := s.FindToken(ctx, tokencache.Token{UserName: t.UserName, ClientID: t.ClientID}); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("FindTokenByID", func(b *testing.B) {
				i := 0
				for b.Loop() {
					if _, err := s.FindTokenByID(ctx, toks[i%len(toks)].ID); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("SaveToken_CAS", func(b *testing.B) {
				i := 0
				for b.Loop() {
					t := &toks[i%len(toks)]
					t.AccessToken = fmt.Sprint("access-", i)
					if err := s.SaveToken(ctx, t); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("SaveToken_by_user", func(b *testing.B) {
				i := 0
				for b.Loop() {
					t := toks[i%len(toks)]
					t.ID, t.Version = "", 0
					t.AccessToken = fmt.Sprint("access-u-", i)
					if err := s.SaveToken(ctx, &t); err != nil {
						b.Fatal(err)
					}
					toks[i%len(toks)].Version = t.Version
					i++
				}
			})
		})
	}
}
