package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"

	"github.com/tokencache/tokencache"
)

// maxSaveAttempts bounds how often SaveToken runs its transaction again
// after losing a race to another writer.
const maxSaveAttempts = 30

// cleanupBatch is how many expired rows one DELETE of the cleanup removes.
const cleanupBatch = 1000

// Store is a tokencache.Store in an SQL table. It is safe for concurrent
// use, also by many processes sharing the table. Call Close when done.
type Store struct {
	db        *sql.DB
	d         *dialect
	table     string // the validated, unquoted name
	retention time.Duration
	digest    digester
	now       func() time.Time
	q         queries
	fq        flightQueries
	stmts     map[string]*sql.Stmt // the hot queries, prepared once; by SQL text

	stop      chan struct{} // closed by Close: ends the cleanup loop
	done      chan struct{} // closed when the cleanup loop has ended
	closeOnce sync.Once
	closeErr  error
}

var _ tokencache.Store = (*Store)(nil)

// Open connects to the database dsn names, creates or migrates the token
// table, and returns a Store on it. dsn is one of
//
//	postgres://user[:pass]@host[:port]/db[?sslmode=disable]   (jackc/pgx)
//	mysql://user[:pass]@host[:port]/db[?driver params]       (go-sql-driver/mysql; MariaDB too)
//	sqlite:PATH                                               (modernc.org/sqlite, no cgo)
//
// SQLite databases use WAL and a 10 s busy timeout, so many processes on one
// host can share the file. Open is safe to run from many processes at once:
// they serialise on a database lock while the schema is migrated, and the
// later ones find nothing left to do. Errors never quote the DSN.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	c := newConfig(opts)
	if c.err != nil {
		return nil, c.err
	}
	info, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(info.driverName, info.driverDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: opening %s: %w", info.dialect.name, err)
	}
	switch {
	case info.memory:
		db.SetMaxOpenConns(1) // every connection would have its own database
	case info.dialect == sqliteDialect:
		db.SetMaxOpenConns(8) // one writer at a time anyway: queue in the pool, not in busy waits
	default:
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(8)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlstore: connecting to %s: %w", info.dialect.name, err)
	}
	if err := migrate(ctx, db, info.dialect, c.table); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlstore: migrating table %s on %s: %w", c.table, info.dialect.name, err)
	}
	s := &Store{
		db:        db,
		d:         info.dialect,
		table:     c.table,
		retention: c.retention,
		digest:    digester{key: c.indexKey},
		now:       c.now,
		q:         buildQueries(info.dialect, c.table),
		fq:        buildFlightQueries(info.dialect, c.table),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if err := s.prepare(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlstore: preparing statements on %s: %w", info.dialect.name, err)
	}
	go s.cleanupLoop(c.cleanup)
	return s, nil
}

// prepare prepares the queries of every lookup and save, so that each
// costs one round trip (MySQL would otherwise prepare, execute and close a
// statement per call). database/sql prepares them again on each new
// connection by itself.
func (s *Store) prepare(ctx context.Context) error {
	hot := []string{s.q.findByID, s.q.lockByID, s.q.insert, s.q.update, s.q.casByID, s.q.deleteByID}
	for _, rule := range lookupRules {
		hot = append(hot, s.q.findByKey[rule], s.q.lockByKey[rule])
	}
	s.stmts = make(map[string]*sql.Stmt, len(hot))
	for _, q := range hot {
		st, err := s.db.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		s.stmts[q] = st
	}
	return nil
}

// exec runs q, prepared when it is a hot query, in tx when tx is not nil.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	st := s.stmts[q]
	switch {
	case st != nil && tx != nil:
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	case st != nil:
		return st.ExecContext(ctx, args...)
	case tx != nil:
		return tx.ExecContext(ctx, q, args...)
	default:
		return s.db.ExecContext(ctx, q, args...)
	}
}

// queryRow is exec for a query that returns one row.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	st := s.stmts[q]
	switch {
	case st != nil && tx != nil:
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	case st != nil:
		return st.QueryRowContext(ctx, args...)
	case tx != nil:
		return tx.QueryRowContext(ctx, q, args...)
	default:
		return s.db.QueryRowContext(ctx, q, args...)
	}
}

// Close stops the cleanup loop and closes the database connections. It is
// safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		for _, st := range s.stmts {
			_ = st.Close()
		}
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Table returns the name of the token table.
func (s *Store) Table() string { return s.table }

// Dialect returns "postgres", "mysql" or "sqlite".
func (s *Store) Dialect() string { return s.d.name }

// queries holds the store's SQL text, built once with the table name (a
// validated identifier) and the dialect's placeholders. Every value is a
// placeholder.
type queries struct {
	findByID    string
	findByKey   map[tokencache.Rule]string
	lockByID    string
	lockByKey   map[tokencache.Rule]string
	clearKey    map[tokencache.Rule]string
	steal       string
	insert      string
	update      string
	casByID     string
	deleteByID  string
	getAll      string
	walkPage    string
	deleteAll   string
	deleteStale string
}

func buildQueries(d *dialect, name string) queries {
	t := d.ident(name)
	const live = "(purge_ms IS NULL OR purge_ms > ?)"
	setAll := "version = ?, user_name = ?, client_id = ?, client_secret = ?, refresh_token = ?, access_token = ?, " +
		"grant_token = ?, redirect_url = ?, api_domain = ?, expiry_ms = ?, purge_ms = ?, " +
		"user_key = ?, grant_key = ?, refresh_key = ?, access_key = ?"
	q := queries{
		findByID:  "SELECT " + tokenColumns + " FROM " + t + " WHERE id = ? AND " + live,
		findByKey: map[tokencache.Rule]string{},
		lockByID:  "SELECT " + tokenColumns + " FROM " + t + " WHERE id = ?" + d.forUpdate,
		lockByKey: map[tokencache.Rule]string{},
		clearKey:  map[tokencache.Rule]string{},
		steal: "UPDATE " + t + " SET " +
			"user_key = CASE WHEN user_key = ? THEN NULL ELSE user_key END, " +
			"grant_key = CASE WHEN grant_key = ? THEN NULL ELSE grant_key END, " +
			"refresh_key = CASE WHEN refresh_key = ? THEN NULL ELSE refresh_key END, " +
			"access_key = CASE WHEN access_key = ? THEN NULL ELSE access_key END " +
			"WHERE id <> ? AND (user_key = ? OR grant_key = ? OR refresh_key = ? OR access_key = ?)",
		insert:      "INSERT INTO " + t + " (" + columns + ") VALUES (?" + strings.Repeat(", ?", 15) + ")",
		update:      "UPDATE " + t + " SET " + setAll + " WHERE id = ?",
		casByID:     "UPDATE " + t + " SET " + setAll + " WHERE id = ? AND version = ? AND " + live,
		deleteByID:  "DELETE FROM " + t + " WHERE id = ?",
		getAll:      "SELECT " + tokenColumns + " FROM " + t + " WHERE " + live,
		walkPage:    "SELECT " + tokenColumns + " FROM " + t + " WHERE id > ? AND " + live + " ORDER BY id LIMIT " + strconv.Itoa(walkPageSize),
		deleteAll:   "DELETE FROM " + t,
		deleteStale: d.limitDelete(t, "purge_ms <= ?", cleanupBatch),
	}
	for rule, col := range keyColumn {
		find := "SELECT " + tokenColumns + " FROM " + t + " WHERE " + col + " = ? AND " + live
		if rule == tokencache.RuleAccessToken {
			find += " AND (expiry_ms IS NULL OR expiry_ms > ?)"
		}
		q.findByKey[rule] = d.rebind(find)
		q.lockByKey[rule] = d.rebind("SELECT " + tokenColumns + " FROM " + t + " WHERE " + col + " = ?" + d.forUpdate)
		q.clearKey[rule] = d.rebind("UPDATE " + t + " SET " + col + " = NULL WHERE id = ?")
	}
	for _, p := range []*string{&q.findByID, &q.lockByID, &q.steal, &q.insert, &q.update, &q.casByID, &q.deleteByID, &q.getAll, &q.walkPage, &q.deleteStale} {
		*p = d.rebind(*p)
	}
	return q
}

// FindToken returns the token query matches; see tokencache.Store. A miss
// is ErrNotFound; a failure of the database never is.
func (s *Store) FindToken(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
	if err := ctx.Err(); err != nil {
		return tokencache.Token{}, fmt.Errorf("sqlstore: find token: %w", err)
	}
	if err := tokencache.ValidateQuery(query); err != nil {
		return tokencache.Token{}, err
	}
	rule := tokencache.RuleOf(query)
	now := s.now()
	ms := now.UnixMilli()
	var r *sql.Row
	if rule == tokencache.RuleID {
		r = s.queryRow(ctx, nil, s.q.findByID, query.ID, ms)
	} else {
		args := []any{s.digest.digest(rule, query), ms}
		if rule == tokencache.RuleAccessToken {
			args = append(args, ms)
		}
		r = s.queryRow(ctx, nil, s.q.findByKey[rule], args...)
	}
	st, err := scanRow(r)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !tokencache.Matches(query, st.t, now) {
		return tokencache.Token{}, fmt.Errorf("sqlstore: find token by %s: %w", rule, tokencache.ErrNotFound)
	}
	if err != nil {
		return tokencache.Token{}, fmt.Errorf("sqlstore: find token by %s: %w", rule, err)
	}
	return st.t, nil
}

// FindTokenByID returns the token with this ID; see tokencache.Store.
func (s *Store) FindTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	if err := tokencache.ValidateID(id); err != nil {
		return tokencache.Token{}, err
	}
	return s.FindToken(ctx, tokencache.Token{ID: id})
}

// SaveToken inserts or updates token; see tokencache.Store.
//
// A save with a Version and an ID is one conditional UPDATE (the
// compare-and-set). Any other save is a transaction that locks the row the
// token matches, then updates it or inserts a new one; the unique digest
// columns make a racing insert of the same identity fail, and the loser runs
// its transaction again and finds the winner.
//
// Values are unique in the table: when the token saved holds a user name,
// grant, refresh or access token that another token holds too (a save by
// ID onto another token's user, say), the token saved last wins that value,
// as redisstore's index points at its last writer: the other token keeps
// its fields but is no longer found by that value.
func (s *Store) SaveToken(ctx context.Context, token *tokencache.Token) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: save token: %w", err)
	}
	now := s.now()
	if err := tokencache.ValidateSave(token, now); err != nil {
		return err
	}
	rule := tokencache.RuleOf(*token)
	steal := false
	if rule == tokencache.RuleID && token.Version != 0 {
		ok, err := s.casByID(ctx, token, now)
		switch {
		case err == nil && ok:
			return nil
		case err == nil:
			return fmt.Errorf("sqlstore: save token version %d: %w", token.Version, tokencache.ErrConflict)
		case !s.d.retryable(err):
			return fmt.Errorf("sqlstore: save token: %w", err)
		}
		steal = true // another token holds one of its values: the transaction moves it
	}
	var err error
	for attempt := 0; attempt < maxSaveAttempts; attempt++ {
		err = s.saveTx(ctx, token, rule, now, steal || attempt > 0)
		if err == nil {
			return nil
		}
		if errors.Is(err, tokencache.ErrConflict) {
			return fmt.Errorf("sqlstore: save token version %d: %w", token.Version, err)
		}
		if !s.d.retryable(err) || ctx.Err() != nil {
			return fmt.Errorf("sqlstore: save token: %w", err)
		}
		// Lost a race to another writer of the same identity or value: run
		// again, backing off with jitter once it keeps happening.
		if attempt >= 2 {
			wait := time.Duration(1+rand.IntN(min(attempt, 10)*2)) * time.Millisecond
			select {
			case <-ctx.Done():
				return fmt.Errorf("sqlstore: save token: %w", ctx.Err())
			case <-time.After(wait):
			}
		}
	}
	return fmt.Errorf("sqlstore: save token: still losing races after %d attempts: %w", maxSaveAttempts, err)
}

// casByID is the compare-and-set save of a token that names its ID and
// Version: one UPDATE that changes the row only if it is live at that
// revision. It reports whether it did.
func (s *Store) casByID(ctx context.Context, token *tokencache.Token, now time.Time) (bool, error) {
	saved := *token
	saved.Version = token.Version + 1
	args := s.makeRow(saved, now).args()[1:] // the SET list starts at version
	args = append(args, saved.ID, token.Version, now.UnixMilli())
	res, err := s.exec(ctx, nil, s.q.casByID, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	token.Version = saved.Version
	return true, nil
}

// saveTx saves token in one transaction. With steal it first takes the
// token's values away from other tokens that hold them (the value of the
// deciding rule excepted: a token holding that one is the match).
func (s *Store) saveTx(ctx context.Context, token *tokencache.Token, rule tokencache.Rule, now time.Time, steal bool) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: s.d.isolation})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	cur, found, err := s.matchForUpdate(ctx, tx, *token, rule, now)
	if err != nil {
		return err
	}
	if token.Version != 0 && (!found || cur.Version != token.Version) {
		return tokencache.ErrConflict
	}
	saved := *token
	if found {
		saved.ID, saved.Version = cur.ID, cur.Version+1
	} else {
		if saved.ID == "" {
			saved.ID = tokencache.NewID()
		}
		saved.Version = 1
	}
	r := s.makeRow(saved, now)
	if steal {
		var mine [4]any
		for i, lr := range lookupRules {
			if lr != rule {
				mine[i] = r.digests[i].arg()
			}
		}
		args := append(mine[:], saved.ID)
		args = append(args, mine[:]...)
		if _, err := tx.ExecContext(ctx, s.q.steal, args...); err != nil {
			return err
		}
	}
	args := r.args()
	if found {
		_, err = s.exec(ctx, tx, s.q.update, append(args[1:], saved.ID)...)
	} else {
		_, err = s.exec(ctx, tx, s.q.insert, args...)
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	token.ID, token.Version = saved.ID, saved.Version
	return nil
}

// matchForUpdate reads and locks the live row that t matches under rule.
// A row that holds the rule's value but does not match (it is no longer
// live, or its access token has expired) gives the value up: a dead row is
// deleted, a live one loses that digest, so that the insert that follows
// cannot collide with it.
func (s *Store) matchForUpdate(ctx context.Context, tx *sql.Tx, t tokencache.Token, rule tokencache.Rule, now time.Time) (tokencache.Token, bool, error) {
	var r *sql.Row
	if rule == tokencache.RuleID {
		r = s.queryRow(ctx, tx, s.q.lockByID, t.ID)
	} else {
		r = s.queryRow(ctx, tx, s.q.lockByKey[rule], s.digest.digest(rule, t))
	}
	st, err := scanRow(r)
	if errors.Is(err, sql.ErrNoRows) {
		return tokencache.Token{}, false, nil
	}
	if err != nil {
		return tokencache.Token{}, false, err
	}
	live := st.live(now)
	if live && tokencache.Matches(t, st.t, now) {
		return st.t, true, nil
	}
	if !live {
		_, err = tx.ExecContext(ctx, s.q.deleteByID, st.t.ID)
	} else {
		_, err = tx.ExecContext(ctx, s.q.clearKey[rule], st.t.ID)
	}
	return tokencache.Token{}, false, err
}

// DeleteToken removes the token with this ID; see tokencache.Store.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: delete token: %w", err)
	}
	if err := tokencache.ValidateID(id); err != nil {
		return err
	}
	if _, err := s.exec(ctx, nil, s.q.deleteByID, id); err != nil {
		return fmt.Errorf("sqlstore: delete token: %w", err)
	}
	return nil
}

// GetTokens returns every live token; see tokencache.Store.
func (s *Store) GetTokens(ctx context.Context) ([]tokencache.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: get tokens: %w", err)
	}
	now := s.now()
	rows, err := s.db.QueryContext(ctx, s.q.getAll, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get tokens: %w", err)
	}
	defer rows.Close()
	out := []tokencache.Token{}
	for rows.Next() {
		st, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: get tokens: %w", err)
		}
		if st.live(now) {
			out = append(out, st.t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: get tokens: %w", err)
	}
	return out, nil
}

// walkPageSize is how many rows one page of Walk reads.
const walkPageSize = 500

var _ tokencache.Walker = (*Store)(nil)

// Walk calls fn for every live token, in ID order, reading a page of rows
// at a time through the primary key (no cursor stays open while fn runs);
// see tokencache.Walker.
func (s *Store) Walk(ctx context.Context, fn func(tokencache.Token) error) error {
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlstore: walk: %w", err)
		}
		now := s.now()
		rows, err := s.db.QueryContext(ctx, s.q.walkPage, after, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("sqlstore: walk: %w", err)
		}
		page := make([]tokencache.Token, 0, walkPageSize)
		n := 0
		for rows.Next() {
			st, err := scanRow(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("sqlstore: walk: %w", err)
			}
			n++
			after = st.t.ID
			if st.live(now) {
				page = append(page, st.t)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("sqlstore: walk: %w", err)
		}
		for _, t := range page {
			if err := fn(t); err != nil {
				return err
			}
		}
		if n < walkPageSize {
			return nil
		}
	}
}

// DeleteTokens removes every token of the table; see tokencache.Store.
// Other tables, such as those of other stores, are not touched.
func (s *Store) DeleteTokens(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: delete tokens: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q.deleteAll); err != nil {
		return fmt.Errorf("sqlstore: delete tokens: %w", err)
	}
	return nil
}

// Cleanup deletes the rows of tokens that are no longer live, in bounded
// batches through the index on their purge time, and returns how many it
// deleted. The cleanup loop calls it; lookups never need it, since they
// filter such rows out.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, s.q.deleteStale, s.now().UnixMilli())
		if err != nil {
			return total, fmt.Errorf("sqlstore: cleanup: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sqlstore: cleanup: %w", err)
		}
		total += n
		if n < cleanupBatch {
			return total, nil
		}
	}
}

// cleanupLoop runs Cleanup every interval until Close; 0 runs nothing.
// A failed cleanup is tried again at the next tick: nothing depends on it.
func (s *Store) cleanupLoop(interval time.Duration) {
	defer close(s.done)
	if interval <= 0 {
		<-s.stop
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, _ = s.Cleanup(ctx)
			cancel()
		}
	}
}

// DropTable drops the token table, its table of in-flight marks and its schema-version row: everything
// the Store created. The Store must not be used afterwards except to Close
// it. Tests use it to clean up after themselves.
func (s *Store) DropTable(ctx context.Context) error {
	for _, t := range []string{s.table, flightsTable(s.table)} {
		if _, err := s.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+s.d.ident(t)); err != nil {
			return fmt.Errorf("sqlstore: drop table: %w", err)
		}
	}
	if _, err := s.db.ExecContext(ctx, s.d.rebind("DELETE FROM "+SchemaTable+" WHERE table_name = ?"), s.table); err != nil {
		return fmt.Errorf("sqlstore: drop table: %w", err)
	}
	return nil
}
