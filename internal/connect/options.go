package connect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// How long Open waits for Redis: a dial that hangs (a firewall dropping
// packets) and the first PING are both bounded, so a wrong --redis fails in
// seconds rather than at the kernel's TCP timeout.
const (
	DialTimeout = 3 * time.Second
	PingTimeout = 5 * time.Second
)

// Options are the connection settings of a command.
type Options struct {
	URL string // the --redis URL

	// Password, when set, is the password of the data nodes (not of the
	// Sentinels), for a URL that carries none. PasswordFile names a file
	// holding it (one trailing newline is dropped). At most one of the URL,
	// Password and PasswordFile may give a password.
	Password     string
	PasswordFile string

	// TLS: a CA bundle to verify the server against instead of the system
	// roots, and a client certificate and key for mutual TLS. Any of them
	// turns TLS on, also for a redis:// URL.
	TLSCA, TLSCert, TLSKey string
}

// Kind names the topology a URL selects.
type Kind string

// The topologies.
const (
	Standalone Kind = "standalone"
	Cluster    Kind = "cluster"
	Sentinel   Kind = "sentinel"
)

// Endpoint is a parsed set of Options: the client options of one kind, and
// what a message may say about the server. Only the client options hold the
// password.
type Endpoint struct {
	Kind  Kind
	Where string // host:port, or the addresses of a cluster's seeds or of the Sentinels, for messages
	user  string
	tls   bool

	single   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

// Parse reads o. Its errors wrap ErrBadURL and never quote the URL, which may
// hold a password.
func Parse(o Options) (*Endpoint, error) {
	raw := o.URL
	password := urlPassword(raw)
	fail := func(err error) error {
		return badURL("invalid --redis URL: " + Scrub(urlErrorReason(err), password))
	}
	if !strings.Contains(raw, "://") {
		return nil, fail(errors.New("no scheme: write redis://host:port, rediss://host:port (TLS), unix:///path or redis+sentinel://host:port/master"))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fail(err)
	}
	ep := &Endpoint{user: u.User.Username()}
	switch {
	case u.Scheme == "redis+sentinel" || u.Scheme == "rediss+sentinel":
		fo, err := parseSentinelURL(u)
		if err != nil {
			return nil, fail(err)
		}
		ep.Kind, ep.failover = Sentinel, fo
	case u.Query().Has("master_name"):
		fo, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, fail(err)
		}
		ep.Kind, ep.failover = Sentinel, fo
		ep.user = fo.Username
	case u.Query().Has("addr"):
		co, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, fail(err)
		}
		ep.Kind, ep.cluster = Cluster, co
	default:
		so, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fail(err)
		}
		ep.Kind, ep.single = Standalone, so
	}
	if err := ep.setPassword(o); err != nil {
		return nil, err
	}
	if err := ep.setTLS(o); err != nil {
		return nil, err
	}
	ep.setTimeouts()
	return ep, nil
}

// parseSentinelURL reads redis+sentinel://[user[:password]@]host:port[,host:port…]/MASTER[/DB][?sentinel_password=…].
func parseSentinelURL(u *url.URL) (*redis.FailoverOptions, error) {
	fo := &redis.FailoverOptions{}
	for _, addr := range strings.Split(u.Host, ",") {
		if addr == "" {
			continue
		}
		if !strings.Contains(addr, ":") {
			addr += ":26379"
		}
		fo.SentinelAddrs = append(fo.SentinelAddrs, addr)
	}
	if len(fo.SentinelAddrs) == 0 {
		return nil, errors.New("no Sentinel address")
	}
	parts := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	switch len(parts) {
	case 2:
		if _, err := fmt.Sscanf(parts[1], "%d", &fo.DB); err != nil {
			return nil, errors.New("the database after the master name is not a number")
		}
		fallthrough
	case 1:
		fo.MasterName = parts[0]
	case 0:
		return nil, errors.New("no master name: write redis+sentinel://host:26379/MASTER")
	default:
		return nil, errors.New("the path is not /MASTER or /MASTER/DB")
	}
	fo.Username = u.User.Username()
	fo.Password, _ = u.User.Password()
	q := u.Query()
	fo.SentinelPassword = q.Get("sentinel_password")
	fo.SentinelUsername = q.Get("sentinel_username")
	q.Del("sentinel_password")
	q.Del("sentinel_username")
	for name := range q {
		return nil, fmt.Errorf("unknown option %s (redis+sentinel URLs take sentinel_username and sentinel_password)", name)
	}
	if u.Scheme == "rediss+sentinel" {
		fo.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return fo, nil
}

// setPassword applies Password or PasswordFile to the data nodes.
func (ep *Endpoint) setPassword(o Options) error {
	pw := o.Password
	if o.PasswordFile != "" {
		if pw != "" {
			return badURL("give the Redis password once: TOKENCACHE_REDIS_PASSWORD or --redis-password-file, not both")
		}
		b, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return badURL("--redis-password-file: " + fileReason(err))
		}
		pw = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			return badURL("--redis-password-file " + o.PasswordFile + " is empty")
		}
	}
	if pw == "" {
		return nil
	}
	if ep.password() != "" {
		return badURL("give the Redis password once: in the URL, or in TOKENCACHE_REDIS_PASSWORD or --redis-password-file")
	}
	switch {
	case ep.single != nil:
		ep.single.Password = pw
	case ep.cluster != nil:
		ep.cluster.Password = pw
	default:
		ep.failover.Password = pw
	}
	return nil
}

func fileReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + " " + pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// setTLS loads the CA bundle and the client certificate of o.
func (ep *Endpoint) setTLS(o Options) error {
	cfg := ep.tlsConfig()
	if o.TLSCA == "" && o.TLSCert == "" && o.TLSKey == "" {
		ep.tls = cfg != nil
		return nil
	}
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if o.TLSCA != "" {
		pem, err := os.ReadFile(o.TLSCA)
		if err != nil {
			return badURL("--tls-ca: " + fileReason(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return badURL("--tls-ca " + o.TLSCA + ": no PEM certificate in it")
		}
		cfg.RootCAs = pool
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return badURL("--tls-cert and --tls-key go together")
	}
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return badURL("--tls-cert/--tls-key: " + singleLine(strings.TrimPrefix(err.Error(), "tls: ")))
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if cfg.ServerName == "" && ep.single != nil && ep.single.Network != "unix" {
		if host, _, ok := strings.Cut(ep.single.Addr, ":"); ok {
			cfg.ServerName = host
		}
	}
	switch {
	case ep.single != nil:
		ep.single.TLSConfig = cfg
	case ep.cluster != nil:
		ep.cluster.TLSConfig = cfg
	default:
		ep.failover.TLSConfig = cfg
	}
	ep.tls = true
	return nil
}

func (ep *Endpoint) tlsConfig() *tls.Config {
	switch {
	case ep.single != nil:
		return ep.single.TLSConfig
	case ep.cluster != nil:
		return ep.cluster.TLSConfig
	default:
		return ep.failover.TLSConfig
	}
}

func (ep *Endpoint) setTimeouts() {
	switch {
	case ep.single != nil:
		ep.single.ContextTimeoutEnabled = true
		if ep.single.DialTimeout == 0 {
			ep.single.DialTimeout = DialTimeout
		}
		ep.Where = ep.single.Addr
	case ep.cluster != nil:
		ep.cluster.ContextTimeoutEnabled = true
		if ep.cluster.DialTimeout == 0 {
			ep.cluster.DialTimeout = DialTimeout
		}
		ep.Where = strings.Join(ep.cluster.Addrs, ",")
	default:
		ep.failover.ContextTimeoutEnabled = true
		if ep.failover.DialTimeout == 0 {
			ep.failover.DialTimeout = DialTimeout
		}
		ep.Where = "master " + ep.failover.MasterName + " of Sentinels " + strings.Join(ep.failover.SentinelAddrs, ",")
	}
}

// NewClient returns a client of the endpoint's kind. It does not connect.
func (ep *Endpoint) NewClient() redis.UniversalClient {
	switch {
	case ep.cluster != nil:
		return redis.NewClusterClient(ep.cluster)
	case ep.failover != nil:
		return redis.NewFailoverClient(ep.failover)
	}
	return redis.NewClient(ep.single)
}

// password returns the data nodes' password, so that messages can be
// scrubbed of it.
func (ep *Endpoint) password() string {
	switch {
	case ep.single != nil:
		return ep.single.Password
	case ep.cluster != nil:
		return ep.cluster.Password
	default:
		return ep.failover.Password
	}
}

// secrets returns every password the endpoint holds.
func (ep *Endpoint) secrets() []string {
	s := []string{ep.password()}
	if ep.failover != nil {
		s = append(s, ep.failover.SentinelPassword)
	}
	return s
}
