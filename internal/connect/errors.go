package connect

import "errors"

// Kinds of failure, for errors.Is. Every error of this package wraps one.
var (
	// ErrBadURL: the settings cannot name a server (a usage error).
	ErrBadURL = errors.New("connect: invalid Redis settings")
	// ErrUnreachable: the server named cannot be used: down, unreachable,
	// refusing the credentials or the TLS handshake.
	ErrUnreachable = errors.New("connect: Redis unreachable")
)

// kindError is a message of its own wrapping one of the kinds: the message
// is shown as it is, without the kind's text.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func badURL(msg string) error      { return &kindError{kind: ErrBadURL, msg: msg} }
func unreachable(msg string) error { return &kindError{kind: ErrUnreachable, msg: msg} }
