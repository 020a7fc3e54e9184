package refresher

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tokencache/tokencache"
)

// ErrTemporary is wrapped, together with its cause, by Token when it has no
// valid token for a reason that may pass: the server failed, Redis is down,
// the wait for another worker's refresh timed out. It is never ErrNotFound
// and never ErrInvalidGrant.
var ErrTemporary = errors.New("refresher: token temporarily unavailable")

// ErrInvalidClient is wrapped, beside ErrInvalidGrant, when the
// authorization server refused the client's own credentials
// (invalid_client, and the like): a configuration error of the
// application, not a user who must log in again. The Refresher does not
// mark the user's token dead for it: it keeps serving the token while it
// is valid and tries again after the cooldown.
var ErrInvalidClient = errors.New("refresher: invalid client")

// errShuttingDown is why a Refresher being shut down renews nothing.
var errShuttingDown = fmt.Errorf("%w: the refresher is shutting down", ErrTemporary)

// pkgPrefix starts every error message of the package, once.
const pkgPrefix = "refresher: "

// refError is an error of this package whose message names the package
// once, however many of its causes do too: "refresher: token X: refresh:
// invalid grant: …", not "refresher: token X: refresher: refresh: …".
type refError struct {
	msg string
	err error // what fmt.Errorf made; the causes stay reachable through it
}

func (e *refError) Error() string { return e.msg }
func (e *refError) Unwrap() error { return e.err }

// errorf is fmt.Errorf for messages that start with "refresher: ": every
// later "refresher: " in the message, brought in by a wrapped cause, is
// dropped.
func errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, pkgPrefix); ok {
		msg = pkgPrefix + strings.ReplaceAll(rest, pkgPrefix, "")
	}
	return &refError{msg: msg, err: err}
}

// storeErr wraps a store or lock failure in ErrTemporary, unless it says
// something definite: bad input, a rejected grant, a token that is gone
// (stores never report an outage as not found), or ctx's own end.
func storeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	if errors.Is(err, tokencache.ErrInvalidToken) || errors.Is(err, tokencache.ErrNotFound) ||
		errors.Is(err, ErrInvalidGrant) || errors.Is(err, ErrTemporary) || errors.Is(err, ErrBadOption) {
		return err
	}
	return errorf("%w: %w", ErrTemporary, err)
}
