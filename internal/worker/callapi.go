package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrUnauthorized is the protected resource's 401.
var ErrUnauthorized = errors.New("the API answered 401: the access token is unknown or expired")

// CallAPI calls the protected resource with the access token; nil means
// it answered 200.
func CallAPI(ctx context.Context, client *http.Client, apiURL, access string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("calling the API: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized:
		return ErrUnauthorized
	default:
		return fmt.Errorf("the API answered HTTP %d", resp.StatusCode)
	}
}
