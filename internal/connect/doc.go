// Package connect turns a --redis URL and its companion settings (password
// file, TLS files) into a redis.UniversalClient for a standalone server, a
// Redis Cluster or a Sentinel-managed master, checks that the server answers,
// and explains a failure in one line that never holds the password.
//
// Forms of the URL:
//
//	redis://[user[:password]@]host[:port][/db][?options]     standalone
//	rediss://…                                                the same over TLS
//	unix://[user[:password]@]/path/to/socket[?db=N]           a unix socket
//	redis://host1:port?addr=host2:port&addr=host3:port        a Redis Cluster (seed nodes)
//	redis://sentinel1:26379?master_name=NAME&addr=sentinel2:26379
//	                                                          Sentinel, go-redis's failover form
//	redis+sentinel://[user[:password]@]s1:26379,s2:26379/NAME[/db]
//	                                                          Sentinel, the common form
//
// In go-redis's failover form the user and password of the URL are the
// Sentinels' and password= gives the master's; in the redis+sentinel form
// they are the master's, and sentinel_password= gives the Sentinels'.
package connect
