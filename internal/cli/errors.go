package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/connect"
)

// Exit statuses of every command (pinned in DESIGN §7).
const (
	ExitOK          = 0 // success
	ExitFailure     = 1 // anything else: bad rows in an import, a declined purge, a danger found by doctor
	ExitUsage       = 2 // the command line is wrong: unknown command or flag, bad flag value, missing argument
	ExitNotFound    = 3 // no token matches what was asked for
	ExitUnreachable = 4 // Redis or the durable record cannot be used: down, unreachable, refusing the credentials
)

// UsageError is a mistake in the command line. Its message says what to
// change.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// UsageErrorf returns a UsageError with a formatted message.
func UsageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// NotFoundError says that no token matches what the operator asked for.
// It wraps tokencache.ErrNotFound.
type NotFoundError struct{ Msg string }

func (e *NotFoundError) Error() string { return e.Msg }

// Is makes errors.Is(err, tokencache.ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == tokencache.ErrNotFound }

// UnreachableError says that a backend (Redis or the durable record) could
// not be used. Err's message is shown as it is.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// ErrSilent is returned by a command that has already told the user why it
// failed: nothing more is printed, and the exit status is 1.
var ErrSilent = errors.New("failed")

// ExitCode maps a command's error onto its exit status. It is the only place
// that decides one.
func ExitCode(err error) int {
	var usage *UsageError
	var unreachable *UnreachableError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &usage), errors.Is(err, connect.ErrBadURL):
		return ExitUsage
	case errors.As(err, &unreachable), errors.Is(err, connect.ErrUnreachable), IsBackendFailure(err):
		return ExitUnreachable
	case errors.Is(err, tokencache.ErrNotFound):
		return ExitNotFound
	}
	return ExitFailure
}

// IsBackendFailure reports whether err is a failure to talk to a server
// (a connection refused, reset, cut or timed out, a closed client, an
// exhausted pool), as opposed to an answer. Commands that lose Redis
// half-way through exit with ExitUnreachable, as when it was down from the
// start. A file's errors (an *os.PathError) never count, whatever their
// cause.
func IsBackendFailure(err error) bool {
	var (
		op   *net.OpError
		dns  *net.DNSError
		path *os.PathError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.As(err, &path):
		return false // interrupted by the user, or a file: a failure, not an outage
	case errors.As(err, &op), errors.As(err, &dns),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}
