package worker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/refresher"
)

// worker is the state of runWorker's loop; it is used by one goroutine.
type worker struct {
	opts   *Options
	r      *refresher.Refresher
	log    *slog.Logger
	client *http.Client

	query             tokencache.Token // {ID} once a token was found
	calls, ok, failed int64
	lastVersion       int64
	grantCode         string    // read from --grant-code-file
	grantUntil        time.Time // until when to wait for --grant-code-file; zero before the first wait
}

// call makes one call, unless ctx ends first.
func (w *worker) call(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok, err := w.token(ctx)
	if err == nil {
		err = CallAPI(ctx, w.client, w.opts.APIURL, tok.AccessToken)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return
	}
	w.calls++
	if err != nil {
		w.failed++
		attrs := []any{"calls", w.calls, "failed", w.failed, "err", err}
		switch {
		case errors.Is(err, refresher.ErrInvalidGrant):
			attrs = append(attrs, "hint", "the authorization server rejected the token: the user must authorize again")
		case errors.Is(err, tokencache.ErrNotFound):
			attrs = append(attrs, "hint", "no token for this user in Redis: give --grant-code, --grant-code-file or --refresh-token")
		}
		w.log.Warn("call failed", attrs...)
		return
	}
	w.ok++
	if tok.Version != w.lastVersion && w.lastVersion != 0 {
		w.log.Info("token renewed", "token_id", tok.ID, "version", tok.Version, "expires_in", time.Until(tok.Expiry).Round(time.Second))
	}
	w.lastVersion = tok.Version
	if w.calls%int64(w.opts.LogEvery) == 0 || w.calls == 1 {
		w.log.Info("calls", "calls", w.calls, "ok", w.ok, "failed", w.failed,
			"token_id", tok.ID, "version", tok.Version, "expires_in", time.Until(tok.Expiry).Round(time.Second))
	}
}

// token returns a valid token; when Redis has none for the user yet, it
// makes the first one from the grant code or refresh token, once across
// the fleet.
func (w *worker) token(ctx context.Context) (tokencache.Token, error) {
	if w.query.ID != "" {
		tok, err := w.r.Token(ctx, w.query)
		if !errors.Is(err, tokencache.ErrNotFound) {
			return tok, err
		}
		w.query = tokencache.Token{} // deleted: look it up by user again
	}
	q := tokencache.Token{UserName: w.opts.User, ClientID: w.opts.ClientID}
	tok, err := w.r.Token(ctx, q)
	if errors.Is(err, tokencache.ErrNotFound) {
		q.ClientSecret, q.RedirectURL = w.opts.ClientSecret, w.opts.RedirectURL
		q.GrantToken, q.RefreshToken = w.bootstrapCode(ctx), w.opts.RefreshToken
		if q.GrantToken == "" && q.RefreshToken == "" {
			return tokencache.Token{}, err
		}
		if q.GrantToken != "" {
			w.log.Info("no token in Redis for the user: making the first one from the grant code", "user", w.opts.User)
		} else {
			w.log.Info("no token in Redis for the user: making the first one from the refresh token", "user", w.opts.User)
		}
		tok, err = w.r.Token(ctx, q)
	}
	if err == nil {
		w.query = tokencache.Token{ID: tok.ID}
	}
	return tok, err
}

// bootstrapCode returns the grant code: --grant-code, or the content of
// --grant-code-file, waiting for the file to appear.
func (w *worker) bootstrapCode(ctx context.Context) string {
	if w.opts.GrantCode != "" || w.opts.GrantFile == "" {
		return w.opts.GrantCode
	}
	if w.grantCode != "" {
		return w.grantCode
	}
	if w.grantUntil.IsZero() {
		w.grantUntil = time.Now().Add(w.opts.GrantWait)
	}
	for {
		b, err := os.ReadFile(w.opts.GrantFile)
		if code := strings.TrimSpace(string(b)); err == nil && code != "" {
			w.grantCode = code
			return code
		}
		if time.Now().After(w.grantUntil) {
			return ""
		}
		select {
		case <-ctx.Done():
			return "" // the next call waits on
		case <-time.After(500 * time.Millisecond):
		}
	}
}
