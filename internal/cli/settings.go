package cli

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/connect"
	"github.com/tokencache/tokencache/redisstore"
)

// Environment variables of the settings. Each flag's variable is its name in
// upper case with TOKENCACHE_ in front and dashes as underscores; the README's
// settings table lists them.
const (
	EnvRedisURL           = "TOKENCACHE_REDIS_URL"
	EnvRedisPassword      = "TOKENCACHE_REDIS_PASSWORD"
	EnvRedisPasswordFile  = "TOKENCACHE_REDIS_PASSWORD_FILE"
	EnvTLSCA              = "TOKENCACHE_TLS_CA"
	EnvTLSCert            = "TOKENCACHE_TLS_CERT"
	EnvTLSKey             = "TOKENCACHE_TLS_KEY"
	EnvNamespace          = "TOKENCACHE_NAMESPACE"
	EnvIndexKey           = "TOKENCACHE_INDEX_KEY"
	EnvIndexKeyFile       = "TOKENCACHE_INDEX_KEY_FILE"
	EnvPreviousIndexKey   = "TOKENCACHE_PREVIOUS_INDEX_KEY"
	EnvPreviousIndexFiles = "TOKENCACHE_PREVIOUS_INDEX_KEY_FILE"
	EnvPreviousPlainIndex = "TOKENCACHE_PREVIOUS_PLAIN_INDEX"
	EnvRefreshRetention   = "TOKENCACHE_REFRESH_RETENTION"
	EnvDurable            = "TOKENCACHE_DURABLE"

	// EnvClientSecret is the OAuth client secret of worker, token and
	// oauth-server, better kept out of a command line that every local
	// user can read.
	EnvClientSecret = "TOKENCACHE_CLIENT_SECRET"
)

// DefaultRedisURL is the Redis a command talks to when neither --redis nor
// TOKENCACHE_REDIS_URL names one.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// Settings are the connection and store settings. Every command that opens
// the store takes all of them, under the same names, so the command line
// and the application always see the same tokens.
type Settings struct {
	RedisURL     string
	PasswordFile string
	TLSCA        string
	TLSCert      string
	TLSKey       string

	Namespace             string
	IndexKeyFile          string
	PreviousIndexKeyFiles []string
	PreviousPlainIndex    bool // the store used plain SHA-256 digests (no index key) before
	RefreshRetention      time.Duration
	Durable               string
}

func (s *Settings) getenv(name string) string { return os.Getenv(name) }

// AddRedisFlags adds the connection flags to cmd: --redis,
// --redis-password-file and the TLS files.
func (s *Settings) AddRedisFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.RedisURL, "redis", DefaultRedisURL,
		"Redis URL: redis://, rediss:// (TLS), unix://, a Cluster (?addr=…) or Sentinel (redis+sentinel://host:26379/MASTER) (env "+EnvRedisURL+")")
	f.StringVar(&s.PasswordFile, "redis-password-file", "", "file holding the Redis password (env "+EnvRedisPasswordFile+"; or the password itself in "+EnvRedisPassword+")")
	f.StringVar(&s.TLSCA, "tls-ca", "", "PEM CA bundle to verify Redis's certificate with; turns TLS on (env "+EnvTLSCA+")")
	f.StringVar(&s.TLSCert, "tls-cert", "", "PEM client certificate for mutual TLS (env "+EnvTLSCert+")")
	f.StringVar(&s.TLSKey, "tls-key", "", "PEM key of --tls-cert (env "+EnvTLSKey+")")
}

// AddStoreFlags adds the connection flags and every store setting that
// changes what is stored or found: --namespace, --index-key-file,
// --previous-index-key-file, --refresh-retention and --durable.
func (s *Settings) AddStoreFlags(cmd *cobra.Command) {
	s.AddRedisFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&s.Namespace, "namespace", redisstore.DefaultNamespace, "key namespace of the token store (env "+EnvNamespace+")")
	f.StringVar(&s.IndexKeyFile, "index-key-file", "",
		"file holding the index key, as the application's redisstore.WithIndexKey (env "+EnvIndexKeyFile+"; or the key itself in "+EnvIndexKey+")")
	f.StringArrayVar(&s.PreviousIndexKeyFiles, "previous-index-key-file", nil,
		"file holding an index key being rotated out: lookups try it after the current one; repeatable (env "+EnvPreviousIndexFiles+", comma-separated; or the key in "+EnvPreviousIndexKey+")")
	f.BoolVar(&s.PreviousPlainIndex, "previous-plain-index", false,
		"the store had no index key before (plain SHA-256 digests): lookups try those after the current key (env "+EnvPreviousPlainIndex+"=1)")
	f.DurationVar(&s.RefreshRetention, "refresh-retention", redisstore.DefaultRefreshRetention,
		"how long a token with a refresh token outlives its access token, as redisstore.WithRefreshRetention; 0 keeps it until deleted (env "+EnvRefreshRetention+")")
	f.StringVar(&s.Durable, "durable", "", "the durable record behind Redis: postgres://…, mysql://… or sqlite:PATH (env "+EnvDurable+")")
}

// Resolve fills every setting whose flag was not given from its environment
// variable. Commands call it (through the Factory) before they use a setting.
func (s *Settings) Resolve(cmd *cobra.Command) error {
	f := cmd.Flags()
	str := func(flag, env string, p *string) {
		if fl := f.Lookup(flag); fl != nil && !fl.Changed {
			if v := s.getenv(env); v != "" {
				*p = v
			}
		}
	}
	str("redis", EnvRedisURL, &s.RedisURL)
	str("redis-password-file", EnvRedisPasswordFile, &s.PasswordFile)
	str("tls-ca", EnvTLSCA, &s.TLSCA)
	str("tls-cert", EnvTLSCert, &s.TLSCert)
	str("tls-key", EnvTLSKey, &s.TLSKey)
	str("namespace", EnvNamespace, &s.Namespace)
	str("index-key-file", EnvIndexKeyFile, &s.IndexKeyFile)
	str("durable", EnvDurable, &s.Durable)
	if fl := f.Lookup("previous-index-key-file"); fl != nil && !fl.Changed {
		if v := s.getenv(EnvPreviousIndexFiles); v != "" {
			s.PreviousIndexKeyFiles = strings.Split(v, ",")
		}
	}
	if fl := f.Lookup("previous-plain-index"); fl != nil && !fl.Changed {
		switch v := s.getenv(EnvPreviousPlainIndex); v {
		case "":
		case "1", "true", "yes":
			s.PreviousPlainIndex = true
		case "0", "false", "no":
			s.PreviousPlainIndex = false
		default:
			return UsageErrorf("%s=%q: want 1 or 0", EnvPreviousPlainIndex, v)
		}
	}
	if fl := f.Lookup("refresh-retention"); fl != nil && !fl.Changed {
		if v := s.getenv(EnvRefreshRetention); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return UsageErrorf("%s=%q: not a duration such as 2160h", EnvRefreshRetention, v)
			}
			s.RefreshRetention = d
		}
	}
	if s.RefreshRetention < 0 {
		return UsageErrorf("--refresh-retention %v: want zero or more", s.RefreshRetention)
	}
	return nil
}

// ConnectOptions returns the connection settings for package connect.
func (s *Settings) ConnectOptions() connect.Options {
	return connect.Options{
		URL:          s.RedisURL,
		Password:     s.getenv(EnvRedisPassword),
		PasswordFile: s.PasswordFile,
		TLSCA:        s.TLSCA,
		TLSCert:      s.TLSCert,
		TLSKey:       s.TLSKey,
	}
}

// IndexKey returns the current index key: the content of --index-key-file
// or TOKENCACHE_INDEX_KEY; nil when neither is set (plain SHA-256 digests).
func (s *Settings) IndexKey() ([]byte, error) {
	env := s.getenv(EnvIndexKey)
	switch {
	case s.IndexKeyFile != "" && env != "":
		return nil, UsageErrorf("give the index key once: --index-key-file or %s, not both", EnvIndexKey)
	case s.IndexKeyFile != "":
		return readKeyFile("--index-key-file", s.IndexKeyFile)
	case env != "":
		return decodeKey(EnvIndexKey, env)
	}
	return nil, nil
}

// PreviousIndexKeys returns the index keys being rotated out, newest first.
func (s *Settings) PreviousIndexKeys() ([][]byte, error) {
	var keys [][]byte
	for _, name := range s.PreviousIndexKeyFiles {
		if name == "" {
			continue
		}
		k, err := readKeyFile("--previous-index-key-file", name)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if env := s.getenv(EnvPreviousIndexKey); env != "" {
		k, err := decodeKey(EnvPreviousIndexKey, env)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// readKeyFile reads a key file: its bytes, less one trailing newline, or the
// decoded rest of a "base64:" first line.
func readKeyFile(flag, name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, UsageErrorf("%s: %s %s: %v", flag, pe.Op, pe.Path, pe.Err)
		}
		return nil, UsageErrorf("%s: %v", flag, err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	return decodeKey(flag+" "+name, s)
}

// decodeKey reads a key: "base64:…" for a binary key, else the text's bytes.
// Its errors never quote the key.
func decodeKey(where, s string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(s, "base64:"); ok {
		k, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, UsageErrorf("%s: not valid base64 after \"base64:\"", where)
		}
		s = string(k)
	}
	if s == "" {
		return nil, UsageErrorf("%s: the index key is empty", where)
	}
	return []byte(s), nil
}

// StoreOptions returns the redisstore options of the settings.
func (s *Settings) StoreOptions() ([]redisstore.Option, error) {
	opts := []redisstore.Option{
		redisstore.WithNamespace(s.Namespace),
		redisstore.WithRefreshRetention(s.RefreshRetention),
	}
	key, err := s.IndexKey()
	if err != nil {
		return nil, err
	}
	if key != nil {
		opts = append(opts, redisstore.WithIndexKey(key))
	}
	prev, err := s.PreviousIndexKeys()
	if err != nil {
		return nil, err
	}
	if s.PreviousPlainIndex {
		prev = append(prev, nil) // redisstore: an empty key stands for plain SHA-256
	}
	if len(prev) > 0 {
		if key == nil {
			return nil, UsageErrorf("previous index keys need a current one (--index-key-file or %s): the rotation goes to it", EnvIndexKey)
		}
		opts = append(opts, redisstore.WithPreviousIndexKeys(prev...))
	}
	return opts, nil
}
