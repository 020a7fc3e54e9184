// Package scalebench holds the scale measurement of the Redis store (make
// bench-scale): memory per token, lookup latency by every rule against a
// raw HGETALL, a streaming walk, GetTokens and DeleteTokens, at 1,000 to
// 1,000,000 tokens in the default namespace of a private Redis. It has no
// code of its own outside its test.
package scalebench
