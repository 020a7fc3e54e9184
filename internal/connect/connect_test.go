package connect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStandaloneAndCluster(t *testing.T) {
	ep, err := Parse(Options{URL: "redis://bob:pw@10.0.0.1:6380/3"})
	if err != nil {
		t.Fatal(err)
	}
	o := ep.single
	if ep.Kind != Standalone || ep.Where != "10.0.0.1:6380" || ep.user != "bob" || ep.tls || o.DB != 3 || o.Password != "pw" ||
		!o.ContextTimeoutEnabled || o.DialTimeout != DialTimeout || o.TLSConfig != nil {
		t.Errorf("redis:// parsed to %+v (%+v)", ep, o)
	}
	ep, err = Parse(Options{URL: "redis://127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003&dial_timeout=1"})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Kind != Cluster || ep.Where != "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003" ||
		!ep.cluster.ContextTimeoutEnabled || ep.cluster.DialTimeout != time.Second {
		t.Errorf("cluster URL parsed to %+v", ep)
	}
}

func TestParseSentinel(t *testing.T) {
	for _, c := range []struct {
		url                 string
		master              string
		addrs               string
		db                  int
		password, sentinelP string
	}{
		{"redis+sentinel://:datapw@127.0.0.1:26379,127.0.0.1:26380/mymaster/2?sentinel_password=sentpw", "mymaster", "127.0.0.1:26379,127.0.0.1:26380", 2, "datapw", "sentpw"},
		{"redis+sentinel://s1/mymaster", "mymaster", "s1:26379", 0, "", ""},
		// go-redis's failover form: the URL's user info is the Sentinels', password= the master's.
		{"redis://:sentpw@127.0.0.1:26379?master_name=mymaster&addr=127.0.0.1:26380&password=datapw", "mymaster", "127.0.0.1:26379,127.0.0.1:26380", 0, "datapw", "sentpw"},
	} {
		ep, err := Parse(Options{URL: c.url})
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		fo := ep.failover
		if ep.Kind != Sentinel || fo == nil || fo.MasterName != c.master || strings.Join(fo.SentinelAddrs, ",") != c.addrs ||
			fo.DB != c.db || fo.Password != c.password || fo.SentinelPassword != c.sentinelP || !fo.ContextTimeoutEnabled {
			t.Errorf("%s parsed to %+v", c.url, fo)
		}
		if !strings.Contains(ep.Where, "master "+c.master) {
			t.Errorf("%s: Where = %q", c.url, ep.Where)
		}
	}
	for url, want := range map[string]string{
		"redis+sentinel://127.0.0.1:26379":                  "no master name",
		"redis+sentinel://127.0.0.1:26379/m/x":              "not a number",
		"redis+sentinel://127.0.0.1:26379/m?colour=blue":    "unknown option colour",
		"redis+sentinel://:hunter2pw@127.0.0.1:26379/a/b/c": "the path is not",
	} {
		_, err := Parse(Options{URL: url})
		if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter2pw") {
			t.Errorf("%s: %v, want ErrBadURL saying %q", url, err, want)
		}
	}
}

func TestPasswordFromTheEnvironmentOrAFile(t *testing.T) {
	ep, err := Parse(Options{URL: "redis://127.0.0.1:6379", Password: "envpw"})
	if err != nil || ep.single.Password != "envpw" {
		t.Fatalf("Password: %v, %+v", err, ep)
	}
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("filepw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ep, err = Parse(Options{URL: "redis+sentinel://127.0.0.1:26379/m", PasswordFile: file})
	if err != nil || ep.failover.Password != "filepw" || ep.failover.SentinelPassword != "" {
		t.Fatalf("PasswordFile: %v, %+v", err, ep)
	}
	for _, o := range []Options{
		{URL: "redis://:urlpw@127.0.0.1:6379", Password: "envpw"},
		{URL: "redis://127.0.0.1:6379", Password: "envpw", PasswordFile: file},
		{URL: "redis://127.0.0.1:6379", PasswordFile: filepath.Join(t.TempDir(), "missing")},
	} {
		if _, err := Parse(o); !errors.Is(err, ErrBadURL) || strings.Contains(err.Error(), "pw\"") {
			t.Errorf("%+v: %v, want ErrBadURL", o, err)
		}
	}
}

func TestRedactAndScrub(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://127.0.0.1:6379/0":                        "redis://127.0.0.1:6379/0",
		"rediss://:pw@host:1":                             "rediss://:xxxxx@host:1",
		"redis://u:p%zzword@host":                         "redis://u:xxxxx@host",
		"unix://u:secretpw@/tmp/r.sock":                   "unix://u:xxxxx@/tmp/r.sock",
		"redis://s:1?master_name=m&password=datapw":       "redis://s:1?master_name=m&password=xxxxx",
		"redis+sentinel://s:1/m?sentinel_password=sentpw": "redis+sentinel://s:1/m?sentinel_password=xxxxx",
		"redis+sentinel://:datapw@s1:1,s2:2/m":            "redis+sentinel://:xxxxx@s1:1,s2:2/m",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
	if got := Scrub("parse redis://u:s%40cret@h and s@cret", "s%40cret"); strings.Contains(got, "cret") {
		t.Errorf("Scrub left %q", got)
	}
	if got := urlPassword("redis://u:p:w@h@x:1/0"); got != "p:w@h" {
		t.Errorf("urlPassword = %q", got)
	}
}
