package oauthtest

// RefreshState is what a Server knows of a refresh token, as told by
// RefreshTokenState.
type RefreshState int

const (
	// RefreshUnknown: the server never issued the token.
	RefreshUnknown RefreshState = iota
	// RefreshActive: the token would be accepted by a refresh now.
	RefreshActive
	// RefreshRetired: rotation replaced the token; presenting it again is
	// a reuse.
	RefreshRetired
	// RefreshRevoked: the token's family was revoked, by Revoke or by a
	// reuse under WithRevokeOnReuse; no token of the family works again.
	RefreshRevoked
)

// String returns the state's name, such as "active".
func (s RefreshState) String() string {
	switch s {
	case RefreshActive:
		return "active"
	case RefreshRetired:
		return "retired"
	case RefreshRevoked:
		return "revoked"
	default:
		return "unknown"
	}
}

// RefreshTokenState reports the state of the refresh token rt, and the user
// it was issued for ("" when unknown), without counting a request or
// changing anything. Fault tests use it to tell whether a store ends up
// holding a refresh token that still works.
func (s *Server) RefreshTokenState(rt string) (user string, state RefreshState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.refresh[rt]
	switch {
	case e == nil:
		return "", RefreshUnknown
	case e.fam.revoked:
		return e.fam.user, RefreshRevoked
	case e.retired:
		return e.fam.user, RefreshRetired
	default:
		return e.fam.user, RefreshActive
	}
}

// FamiliesRevoked returns how many token families (authorizations) of
// userName are revoked.
func (s *Server) FamiliesRevoked(userName string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, fam := range s.families[userName] {
		if fam.revoked {
			n++
		}
	}
	return n
}
