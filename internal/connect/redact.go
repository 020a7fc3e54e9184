package connect

import (
	"errors"
	"net/url"
	"strings"
)

// Redact returns a --redis URL fit for a log line or a help text: its
// password (in the user info or in a password= or sentinel_password=
// parameter) replaced by "xxxxx". It is the one redaction every command uses.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Scrub(raw, urlPassword(raw))
	}
	q := u.Query()
	changed := false
	for _, name := range []string{"password", "sentinel_password"} {
		if q.Has(name) {
			q.Set(name, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

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

// Scrub removes every occurrence of password, in clear or %-escaped, from msg.
func Scrub(msg, password string) string {
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
