package oauthtest

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// Listen runs a new Server, configured by opts, on addr (such as
// "127.0.0.1:0" for a free loopback port) outside a test, for programs such
// as a demo. Its URL and TokenURL are those of the listener unless
// WithBaseURL gives others (a server made by New alone has no URL, since
// it does not know where it is served). Call stop to release waiting
// requests and close the listener.
func Listen(addr string, opts ...Option) (s *Server, stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	s = New(opts...)
	if s.URL() == "" {
		s.setBaseURL("http://" + ln.Addr().String())
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return s, func() error {
		s.Close()
		if err := hs.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}, nil
}
