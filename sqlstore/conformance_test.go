package sqlstore_test

import (
	"testing"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/sqltest"
	"github.com/tokencache/tokencache/storetest"
)

// TestConformance runs the storetest suite on SQLite, and on PostgreSQL
// and MySQL/MariaDB when their URLs are set.
func TestConformance(t *testing.T) {
	for _, tg := range sqltest.Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) tokencache.Store {
				return sqltest.Open(t, tg)
			})
		})
	}
}
