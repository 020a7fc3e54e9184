package sqlstore

import "github.com/tokencache/tokencache"

// LookupQuery returns the SQL of a lookup by rule, for tests that check its
// plan.
func (s *Store) LookupQuery(rule tokencache.Rule) string {
	if rule == tokencache.RuleID {
		return s.q.findByID
	}
	return s.q.findByKey[rule]
}

// DB exposes the connection pool to tests.
func (s *Store) DBForTest() any { return s.db }

// ParseDSNForTest returns the driver name and DSN that Open would use.
func ParseDSNForTest(dsn string) (driver, driverDSN string, err error) {
	info, err := parseDSN(dsn)
	return info.driverName, info.driverDSN, err
}

// PathForTest returns the file of an SQLite store.
func PathForTest(s *Store) string {
	var path string
	_ = s.db.QueryRow("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path)
	return path
}
