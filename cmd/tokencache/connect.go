package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache/redisstore"
)

// How long connect waits for Redis: a dial that hangs (a firewall dropping
// packets) and the first PING are both bounded, so a wrong --redis fails in
// seconds rather than at the kernel's TCP timeout.
const (
	redisDialTimeout = 3 * time.Second
	redisPingTimeout = 5 * time.Second
)

// redisEndpoint is a parsed --redis URL: the options of one client kind and
// what an error message may say about it. It never holds the password in
// anything but the client options.
type redisEndpoint struct {
	where   string // host:port (or the seed addresses of a cluster) for messages
	user    string // the ACL user, "" for the default user
	tls     bool
	single  *redis.Options        // a standalone server (or a unix socket)
	cluster *redis.ClusterOptions // a Redis Cluster: the URL has addr= parameters
}

// parseRedisURL reads a --redis URL with go-redis's parsers:
//
//	redis://[user[:password]@]host[:port][/db][?options]
//	rediss://…   the same over TLS, verified against the system roots
//	unix://[user[:password]@]/path/to/socket[?db=N]
//	redis://host1:port?addr=host2:port&addr=host3:port   a Redis Cluster
//
// The error never quotes the URL: it may hold a password.
func parseRedisURL(raw string) (*redisEndpoint, error) {
	password := urlPassword(raw)
	fail := func(err error) error {
		return fmt.Errorf("invalid --redis URL: %s", scrubPassword(urlErrorReason(err), password))
	}
	if !strings.Contains(raw, "://") {
		return nil, fail(errors.New("no scheme: write redis://host:port, rediss://host:port (TLS) or unix:///path"))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fail(err)
	}
	ep := &redisEndpoint{user: u.User.Username(), tls: u.Scheme == "rediss"}
	if u.Query().Has("addr") {
		o, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, fail(err)
		}
		o.ContextTimeoutEnabled = true
		if o.DialTimeout == 0 {
			o.DialTimeout = redisDialTimeout
		}
		ep.cluster, ep.where = o, strings.Join(o.Addrs, ",")
		return ep, nil
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fail(err)
	}
	o.ContextTimeoutEnabled = true
	if o.DialTimeout == 0 {
		o.DialTimeout = redisDialTimeout
	}
	ep.single, ep.where = o, o.Addr
	return ep, nil
}

func (ep *redisEndpoint) newClient() redis.UniversalClient {
	if ep.cluster != nil {
		return redis.NewClusterClient(ep.cluster)
	}
	return redis.NewClient(ep.single)
}

// password returns the password the endpoint authenticates with, so that
// messages can be scrubbed of it.
func (ep *redisEndpoint) password() string {
	if ep.cluster != nil {
		return ep.cluster.Password
	}
	return ep.single.Password
}

// connect opens the Redis of --redis, checks with a PING that it answers and
// accepts the credentials, and returns the client (close it) and the token
// store of --namespace. Its errors are one line that names the server, never
// the password.
func (a *app) connect(ctx context.Context) (redis.UniversalClient, *redisstore.Store, error) {
	ep, err := parseRedisURL(a.redisURL)
	if err != nil {
		return nil, nil, err
	}
	redis.SetLogger(quietLogger{})
	rdb := ep.newClient()
	store := redisstore.New(rdb, redisstore.WithNamespace(a.namespace))
	// An invalid namespace makes every store method fail with ErrBadOption.
	// FindTokenByID reports it before it looks at the ID or talks to Redis,
	// so this asks the store itself whether the namespace is acceptable.
	if _, err := store.FindTokenByID(ctx, ""); errors.Is(err, redisstore.ErrBadOption) {
		_ = rdb.Close()
		reason := strings.TrimPrefix(err.Error(), redisstore.ErrBadOption.Error()+": ")
		return nil, nil, fmt.Errorf("invalid --namespace %q: %s", a.namespace, reason)
	}
	pctx, cancel := context.WithTimeout(ctx, redisPingTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("interrupted while connecting to Redis at %s", ep.where)
		}
		return nil, nil, ep.explain(err)
	}
	return rdb, store, nil
}

// explain turns a failed PING into one line that says what an operator
// should check. The parts that quote other packages' errors are scrubbed of
// the password (none is known to quote it; this keeps it that way).
func (ep *redisEndpoint) explain(err error) error {
	who := "the default user"
	if ep.user != "" && ep.user != "default" {
		who = fmt.Sprintf("user %q", ep.user)
	}
	var msg string
	switch {
	case redis.IsAuthError(err):
		if ep.password() == "" || strings.HasPrefix(err.Error(), "NOAUTH") {
			msg = fmt.Sprintf("Redis at %s requires a password: give it in the URL, redis://[user]:PASSWORD@%s", ep.where, ep.where)
		} else {
			msg = fmt.Sprintf("Redis at %s refused the credentials of %s (wrong user name or password)", ep.where, who)
		}
	case redis.IsPermissionError(err):
		msg = fmt.Sprintf("Redis at %s does not let %s run PING (ACL)", ep.where, who)
	case isTLSError(err):
		msg = fmt.Sprintf("TLS handshake with Redis at %s failed: %s", ep.where, scrubPassword(tlsReason(err), ep.password()))
	default:
		msg = fmt.Sprintf("cannot reach Redis at %s: %s", ep.where, scrubPassword(ep.networkReason(err), ep.password()))
	}
	return errors.New(msg)
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
		return strings.TrimPrefix(verify.Err.Error(), "x509: ") + " (SSL_CERT_FILE can name the CA bundle to trust)"
	}
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "tls: "), "x509: ")
}

// networkReason names why the server could not be talked to.
func (ep *redisEndpoint) networkReason(err error) string {
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
			return fmt.Sprintf("no answer within %s (if the port is plain text, use redis://)", redisPingTimeout)
		}
		return fmt.Sprintf("no answer within %s", redisPingTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		if ep.tls {
			return "the server closed the connection (if its port is plain text, use redis://)"
		}
		return "the server closed the connection (if it expects TLS, use rediss://)"
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return "PING failed: " + singleLine(rerr.Error())
	}
	msg := singleLine(err.Error())
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
// line, through connect's errors. go-redis's logger is process-wide; connect
// installs this one, which suits a command-line process.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// urlErrorReason is the part of a URL parsing error worth showing: without
// the "parse URL:" wrapper that quotes the whole URL, and without the
// characters of a malformed %-escape, which may belong to the password.
func urlErrorReason(err error) string {
	var (
		uerr *url.Error
		esc  url.EscapeError
	)
	if errors.As(err, &esc) {
		return "malformed %-escape (write a literal % as %25)"
	}
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return singleLine(strings.TrimPrefix(err.Error(), "redis: "))
}

// urlPassword digs the password out of a URL that may not parse, so that it
// can be scrubbed from messages about that URL.
func urlPassword(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pw, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return ""
	}
	return pw
}

// urlWithoutPassword returns raw with its password masked, for display.
func urlWithoutPassword(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return scrubPassword(raw, urlPassword(raw))
}

// scrubPassword removes every occurrence of password, in clear or %-escaped, from msg.
func scrubPassword(msg, password string) string {
	if password == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, password, "xxxxx")
	if esc := url.QueryEscape(password); esc != password {
		msg = strings.ReplaceAll(msg, esc, "xxxxx")
	}
	if un, err := url.PathUnescape(password); err == nil && un != password && un != "" {
		msg = strings.ReplaceAll(msg, un, "xxxxx")
	}
	return msg
}

// singleLine folds a message onto one line.
func singleLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
