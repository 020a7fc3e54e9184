package modelcheck

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tokencache/tokencache"
)

// Kind is the store method an Op calls.
type Kind int

// The kinds of operation.
const (
	KindSave Kind = iota
	KindFind
	KindFindByID
	KindDelete
	KindGetTokens
	KindDeleteTokens
	KindRestart // replace an instance with a fresh process (empty hint cache)
	KindRace    // concurrent saves of one identity, perhaps with a delete
)

var kindNames = [...]string{"SaveToken", "FindToken", "FindTokenByID", "DeleteToken", "GetTokens", "DeleteTokens", "Restart", "Race"}

// String returns the method name.
func (k Kind) String() string { return kindNames[k] }

// versionMode says which Version a save carries.
type versionMode int

const (
	versionZero    versionMode = iota // unconditional
	versionCurrent                    // the target's current revision
	versionStale                      // a revision the target does not have
)

// Op is one generated operation. IDs in it are the model's.
type Op struct {
	Kind  Kind
	Inst  int              // the instance (process) that runs it
	Token tokencache.Token // SaveToken: the token; FindToken: the query
	ID    string           // FindTokenByID, DeleteToken
	vmode versionMode
}

// The value universe is small on purpose, so that tokens share values,
// identities collide, and moves land on other tokens' identities.
var (
	users    = []string{"u1", "u2", "u3", "Ünï {*?}\n\"x\""}
	clients  = []string{"c1", "c2"}
	grants   = []string{"g1", "g2", "g3"}
	refresh  = []string{"r1", "r2", "r3", "r4", "r5"}
	access   = []string{"a1", "a2", "a3", "a4", "a5", "a6"}
	secrets  = []string{"s1", "s2", ""}
	redirect = []string{"https://app.example/cb", ""}
	domains  = []string{"https://www.zohoapis.eu", "https://www.zohoapis.com", ""}
	fixedIDs = []string{"1", "2", "3"} // as an import keeps them
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// chance is true with probability p.
func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// gen makes operations from a seeded source.
type gen struct {
	r    *rand.Rand
	base time.Time // the run's start, at millisecond precision
}

// expiry returns one of: never, in two hours, an hour ago (a refresh token
// keeps such a token), or 300 years ahead (beyond time.Duration's range).
func (g *gen) expiry(hasRefresh bool) time.Time {
	switch x := g.r.IntN(100); {
	case x < 35:
		return time.Time{}
	case x < 75:
		return g.base.Add(2 * time.Hour)
	case x < 92:
		if hasRefresh || chance(g.r, 0.1) { // sometimes an invalid save
			return g.base.Add(-time.Hour)
		}
		return g.base.Add(2 * time.Hour)
	default:
		if hasRefresh {
			return g.base.AddDate(300, 0, 0)
		}
		return g.base.Add(2 * time.Hour)
	}
}

// fill sets the fields that no rule decides on.
func (g *gen) fill(t *tokencache.Token) {
	t.ClientSecret = pick(g.r, secrets)
	t.RedirectURL = pick(g.r, redirect)
	t.APIDomain = pick(g.r, domains)
	t.Expiry = g.expiry(t.RefreshToken != "")
}

// saveToken returns a token to save whose deciding rule is rule. id is used
// by RuleID.
func (g *gen) saveToken(rule tokencache.Rule, id string) tokencache.Token {
	r := g.r
	t := tokencache.Token{ClientID: pick(r, clients)}
	switch rule {
	case tokencache.RuleID:
		t.ID = id
		if chance(r, 0.7) {
			t.UserName = pick(r, users)
		}
		if chance(r, 0.6) {
			t.RefreshToken = pick(r, refresh)
		}
		if chance(r, 0.7) {
			t.AccessToken = pick(r, access)
		}
		if chance(r, 0.15) {
			t.GrantToken = pick(r, grants)
		}
		if t.AccessToken == "" && t.RefreshToken == "" && t.GrantToken == "" && chance(r, 0.9) {
			t.AccessToken = pick(r, access)
		}
	case tokencache.RuleUserName:
		t.UserName = pick(r, users)
		if chance(r, 0.8) {
			t.RefreshToken = pick(r, refresh)
		}
		if chance(r, 0.8) {
			t.AccessToken = pick(r, access)
		}
		if chance(r, 0.2) {
			t.GrantToken = pick(r, grants)
		}
		if t.AccessToken == "" && t.RefreshToken == "" && t.GrantToken == "" {
			t.AccessToken = pick(r, access)
		}
	case tokencache.RuleGrantToken:
		t.GrantToken = pick(r, grants)
		if chance(r, 0.5) {
			t.RefreshToken = pick(r, refresh)
		}
		if chance(r, 0.5) {
			t.AccessToken = pick(r, access)
		}
	case tokencache.RuleRefreshToken:
		t.RefreshToken = pick(r, refresh)
		if chance(r, 0.8) {
			t.AccessToken = pick(r, access)
		}
	case tokencache.RuleAccessToken:
		t.AccessToken = pick(r, access)
		if chance(r, 0.3) {
			t.ClientID = ""
		}
	}
	g.fill(&t)
	return t
}

// query returns a lookup whose deciding rule is rule.
func (g *gen) query(rule tokencache.Rule) tokencache.Token {
	r := g.r
	q := tokencache.Token{ClientID: pick(r, clients)}
	switch rule {
	case tokencache.RuleUserName:
		q.UserName = pick(r, users)
	case tokencache.RuleGrantToken:
		q.GrantToken = pick(r, grants)
	case tokencache.RuleRefreshToken:
		q.RefreshToken = pick(r, refresh)
	case tokencache.RuleAccessToken:
		q.AccessToken = pick(r, access)
	}
	// Fields a later rule would use never decide: set some to prove it.
	if rule < tokencache.RuleRefreshToken && chance(r, 0.3) {
		q.RefreshToken = pick(r, refresh)
	}
	if rule < tokencache.RuleAccessToken && chance(r, 0.3) {
		q.AccessToken = pick(r, access)
	}
	return q
}

// universe returns every lookup the value universe allows, one per rule
// and value (and client, where the rule scopes by client).
func universe() []tokencache.Token {
	var qs []tokencache.Token
	for _, c := range clients {
		for _, u := range users {
			qs = append(qs, tokencache.Token{UserName: u, ClientID: c})
		}
		for _, gt := range grants {
			qs = append(qs, tokencache.Token{GrantToken: gt, ClientID: c})
		}
		for _, rt := range refresh {
			qs = append(qs, tokencache.Token{RefreshToken: rt, ClientID: c})
		}
	}
	for _, at := range access {
		qs = append(qs, tokencache.Token{AccessToken: at})
	}
	return qs
}

// describe prints a token or query for the history. The values are the
// test's own labels, not real secrets.
func describe(t tokencache.Token) string {
	var b strings.Builder
	b.WriteByte('{')
	add := func(name, v string) {
		if v != "" {
			if b.Len() > 1 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s=%q", name, v)
		}
	}
	add("id", t.ID)
	add("user", t.UserName)
	add("client", t.ClientID)
	add("grant", t.GrantToken)
	add("refresh", t.RefreshToken)
	add("access", t.AccessToken)
	add("secret", t.ClientSecret)
	add("redirect", t.RedirectURL)
	add("domain", t.APIDomain)
	if !t.Expiry.IsZero() {
		add("expiry", t.Expiry.UTC().Format(time.RFC3339))
	}
	if t.Version != 0 {
		add("v", fmt.Sprint(t.Version))
	}
	b.WriteByte('}')
	return b.String()
}
