package config

// Configs derived from a loaded one; a Config is immutable, so these return copies.

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Shard is this instance's share of the targets: those whose id hashes to Index of Count.
type Shard struct {
	Index, Count int
}

// ShardOf places a target id among count shards; stable across runs, hosts and versions
// (FNV-1a of the id), so every instance of a vantage agrees without talking.
func ShardOf(id string, count int) int {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(h.Sum64() % uint64(count))
}

// ParseShard reads "i/n" (the --shard flag), in decimal digits: Atoi alone would take
// "-0/3" or "+1/3" too, and a typo is better an error than some shard.
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	index, err1 := strconv.Atoi(i)
	count, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || !digitsOnly(i) || !digitsOnly(n) {
		return Shard{}, fmt.Errorf("shard %q: want INDEX/COUNT, like 0/3", s)
	}
	sh := Shard{Index: index, Count: count}
	return sh, sh.check()
}

func digitsOnly(s string) bool { return strings.Trim(s, "0123456789") == "" }

func (s Shard) check() error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: want count at least 1 and 0 <= index < count", s.Index, s.Count)
	}
	return nil
}

// WithShard returns a copy of the config that probes only the targets of shard s; the
// regions, products and routes stay whole. A config is immutable, hence the copy.
func (c *Config) WithShard(s Shard) (*Config, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	out := *c
	out.Shard = &s
	out.Targets = nil
	if out.AllTargets == nil {
		out.AllTargets = c.Targets
	}
	if c.Cluster != nil {
		cl := *c.Cluster
		cl.Member = memberName(c.Vantage, &s)
		out.Cluster = &cl
	}
	for _, t := range out.AllTargets {
		if ShardOf(t.ID, s.Count) == s.Index {
			out.Targets = append(out.Targets, t)
		}
	}
	return &out, nil
}

// WithThresholds returns a copy of the config whose targets fire after failures and
// resolve after successes consecutive runs (a one-shot run without state uses 1 and 1).
func (c *Config) WithThresholds(failures, successes int) *Config {
	out := *c
	changed := map[*Target]*Target{}
	with := func(ts []*Target) []*Target {
		out := make([]*Target, len(ts))
		for i, t := range ts {
			if changed[t] == nil {
				tc := *t
				tc.FailureThreshold, tc.SuccessThreshold = failures, successes
				changed[t] = &tc
			}
			out[i] = changed[t]
		}
		return out
	}
	out.Targets, out.AllTargets = with(c.Targets), with(c.AllTargets)
	return &out
}
