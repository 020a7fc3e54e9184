package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Open parses o, connects, and checks with a PING that the server answers
// and accepts the credentials. It returns the client (close it) and the
// endpoint. Its errors are one line that names the server, never the
// password, and wrap ErrBadURL or ErrUnreachable.
func Open(ctx context.Context, o Options) (redis.UniversalClient, *Endpoint, error) {
	ep, err := Parse(o)
	if err != nil {
		return nil, nil, err
	}
	redis.SetLogger(quietLogger{})
	rdb := ep.NewClient()
	if err := ep.Ping(ctx, rdb); err != nil {
		_ = rdb.Close()
		return nil, nil, err
	}
	return rdb, ep, nil
}

// Ping checks, within PingTimeout, that rdb answers; its error is Explain's.
func (ep *Endpoint) Ping(ctx context.Context, rdb redis.UniversalClient) error {
	pctx, cancel := context.WithTimeout(ctx, PingTimeout)
	defer cancel()
	err := rdb.Ping(pctx).Err()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted while connecting to Redis at %s: %w", ep.Where, ctx.Err())
	}
	return ep.Explain(err)
}

// Explain turns a failure to talk to the server into one line that says
// what an operator should check, wrapping ErrUnreachable. The parts that
// quote other packages' errors are scrubbed of the passwords.
func (ep *Endpoint) Explain(err error) error {
	who := "the default user"
	if ep.user != "" && ep.user != "default" {
		who = fmt.Sprintf("user %q", ep.user)
	}
	var msg string
	switch {
	case redis.IsAuthError(err):
		if ep.password() == "" || strings.HasPrefix(err.Error(), "NOAUTH") {
			msg = fmt.Sprintf("Redis at %s requires a password: give it in the URL (redis://[user]:PASSWORD@host), in TOKENCACHE_REDIS_PASSWORD or with --redis-password-file", ep.Where)
		} else {
			msg = fmt.Sprintf("Redis at %s refused the credentials of %s (wrong user name or password)", ep.Where, who)
		}
	case redis.IsPermissionError(err):
		msg = fmt.Sprintf("Redis at %s does not let %s run PING (ACL)", ep.Where, who)
	case isTLSError(err):
		msg = fmt.Sprintf("TLS handshake with Redis at %s failed: %s", ep.Where, ep.scrub(tlsReason(err)))
	default:
		msg = fmt.Sprintf("cannot reach Redis at %s: %s", ep.Where, ep.scrub(ep.networkReason(err)))
	}
	return unreachable(msg)
}

func (ep *Endpoint) scrub(msg string) string {
	for _, s := range ep.secrets() {
		msg = Scrub(msg, s)
	}
	return msg
}

func isTLSError(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		header    tls.RecordHeaderError
		alert     tls.AlertError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &alert) ||
		errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

func tlsReason(err error) string {
	var (
		verify *tls.CertificateVerificationError
		header tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &header):
		return "the server does not speak TLS (use redis:// for a plain-text port)"
	case errors.As(err, &verify):
		return strings.TrimPrefix(verify.Err.Error(), "x509: ") + " (--tls-ca names the CA bundle to trust)"
	}
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "tls: "), "x509: ")
}

// networkReason names why the server could not be talked to.
func (ep *Endpoint) networkReason(err error) string {
	var (
		dns *net.DNSError
		ne  net.Error
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "unknown host " + dns.Name
		}
		return "DNS lookup of " + dns.Name + " failed"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		if ep.tls {
			return fmt.Sprintf("no answer within %s (if the port is plain text, use redis://)", PingTimeout)
		}
		return fmt.Sprintf("no answer within %s", PingTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		if ep.tls {
			return "the server closed the connection (if its port is plain text, use redis://)"
		}
		return "the server closed the connection (if it expects TLS, use rediss://)"
	}
	msg := singleLine(err.Error())
	if ep.Kind == Sentinel && strings.Contains(msg, "all sentinels") {
		return "no Sentinel answered for that master (" + strings.TrimPrefix(msg, "redis: ") + ")"
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return "PING failed: " + singleLine(rerr.Error())
	}
	if strings.HasPrefix(msg, "redis: can't parse") {
		if len(msg) > 100 {
			msg = msg[:100] + "…"
		}
		return "the server does not answer like Redis (" + msg + ")"
	}
	return msg
}

// quietLogger drops go-redis's log lines: a failed dial is logged once per
// pool attempt, and the command line reports each failure itself, in one
// line. go-redis's logger is process-wide; Open installs this one, which
// suits a command-line process.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
