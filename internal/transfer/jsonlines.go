package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/view"
)

// maxImportLine is the longest input line import reads. A token's eight
// string fields may hold 64 KiB each, 512 KiB in all, and JSON escaping can
// make control characters six times longer (\u0000), so a valid token fits
// in about 3 MiB. A longer line is reported as bad and skipped; it does not
// stop the import, as it would stop a bufio.Scanner.
const maxImportLine = 4 << 20

// readJSONLines reads JSON lines, one tokencache.Token per line; blank
// lines are skipped.
func readJSONLines(ctx context.Context, in Input, fn func(Record) error) error {
	lr := &lineReader{r: bufio.NewReaderSize(in.Reader, 64<<10), max: maxImportLine}
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading line %d: %w", n, err)
		}
		rec := Record{Where: fmt.Sprintf("line %d", n)}
		switch {
		case tooLong:
			rec.Bad = fmt.Sprintf("longer than %d MiB", maxImportLine>>20)
		case len(bytes.TrimSpace(line)) == 0:
			continue
		default:
			tok, err := decodeTokenLine(line)
			if err != nil {
				rec.Bad = err.Error()
			}
			rec.Token = tok
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// decodeTokenLine decodes one line strictly. Its errors never quote the
// line: it may hold secrets.
func decodeTokenLine(line []byte) (tokencache.Token, error) {
	var t tokencache.Token
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return t, errors.New(jsonReason(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return t, errors.New("more than one JSON value on the line")
	}
	return t, nil
}

// jsonReason says why a line is not a token, naming a field or an offset but
// never quoting a value.
func jsonReason(err error) string {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		parse   *time.ParseError
	)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: the line ends inside a value"
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return fmt.Sprintf("not a JSON object but a JSON %s", typeErr.Value)
		}
		return fmt.Sprintf("%s: a JSON %s where a %s belongs", typeErr.Field, typeErr.Value, typeErr.Type)
	case errors.As(err, &parse), strings.Contains(err.Error(), "Time.UnmarshalJSON"):
		return "expiry: not an RFC 3339 time"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if len(name) > 66 {
			name = name[:64] + `…"`
		}
		return "unknown field " + name
	}
	return "not a valid token"
}

// jsonLine is a token as export writes it: every field of tokencache.Token,
// expiry omitted when the token never expires.
type jsonLine struct {
	ID           string     `json:"id"`
	UserName     string     `json:"user_name"`
	ClientID     string     `json:"client_id"`
	ClientSecret string     `json:"client_secret"`
	RefreshToken string     `json:"refresh_token"`
	AccessToken  string     `json:"access_token"`
	GrantToken   string     `json:"grant_token"`
	Expiry       *time.Time `json:"expiry,omitempty"`
	RedirectURL  string     `json:"redirect_url"`
	APIDomain    string     `json:"api_domain"`
	Version      int64      `json:"version"`
}

// jsonLinesWriter writes one JSON token per line.
type jsonLinesWriter struct {
	bw          *bufio.Writer
	enc         *json.Encoder
	withSecrets bool
}

// writeJSONLines returns a writer of one JSON token per line, secrets
// emptied unless withSecrets.
func writeJSONLines(w io.Writer, withSecrets bool) (TokenWriter, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &jsonLinesWriter{bw: bw, enc: enc, withSecrets: withSecrets}, nil
}

func (jw *jsonLinesWriter) Write(t tokencache.Token) error {
	t = withoutSecrets(t, jw.withSecrets)
	return jw.enc.Encode(jsonLine{
		ID: t.ID, UserName: t.UserName, ClientID: t.ClientID, ClientSecret: t.ClientSecret,
		RefreshToken: t.RefreshToken, AccessToken: t.AccessToken, GrantToken: t.GrantToken,
		Expiry: view.ExpiryPtr(t.Expiry), RedirectURL: t.RedirectURL, APIDomain: t.APIDomain, Version: t.Version,
	})
}

func (jw *jsonLinesWriter) Flush() error { return jw.bw.Flush() }
