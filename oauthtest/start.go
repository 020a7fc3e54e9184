package oauthtest

import (
	"net/http/httptest"
	"testing"
)

// Start runs a new Server, configured by opts, on a loopback port for the
// duration of the test t. The server's URL, TokenURL and default api_domain
// are that of the listener. When t ends, Start's cleanup releases requests
// waiting on injected latency (see Server.Close) and closes the listener.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	ts := httptest.NewServer(s)
	s.setBaseURL(ts.URL)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s
}
