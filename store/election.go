package store

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// electionPrefix holds candidates as /election/{nome}/{lease hex}: the layout
// of concurrency.Election, so a Go program with etcd's own package campaigns
// in the same line as HTTP candidates. The leader is the oldest key.
const electionPrefix = "/election/"

// Candidate is a candidate of an election; Token is its key's create revision.
type Candidate struct {
	Election string          `json:"eleicao"`
	Name     string          `json:"candidato"`
	Value    json.RawMessage `json:"valor"`
	Token    int64           `json:"token"`
	TTL      int64           `json:"ttl"`
}

// Election is an election's leader and everyone in line.
type Election struct {
	Name       string          `json:"eleicao"`
	Leader     string          `json:"lider"`
	Value      json.RawMessage `json:"valor"`
	Token      int64           `json:"token"`
	TTLLeft    int64           `json:"ttl_restante"`
	Candidates []string        `json:"candidatos"` // in line, the leader first
}

// candidateValue is what an HTTP candidate's key holds.
type candidateValue struct {
	Candidate string          `json:"candidato"`
	Value     json.RawMessage `json:"valor"`
}

// candidateOf reads a candidate's key. A key written by another etcd client
// (concurrency.Election stores any string) is named by its lease, its value
// kept as JSON when it is JSON and as a string otherwise.
func candidateOf(kv *mvccpb.KeyValue) (name string, value json.RawMessage) {
	var v candidateValue
	if json.Unmarshal(kv.Value, &v) == nil && v.Candidate != "" {
		if v.Value == nil {
			v.Value = json.RawMessage("null")
		}
		return v.Candidate, v.Value
	}
	key := string(kv.Key)
	name = key[strings.LastIndex(key, "/")+1:]
	if json.Valid(kv.Value) {
		return name, kv.Value
	}
	value, _ = json.Marshal(string(kv.Value))
	return name, value
}

func electionKeys(name string) string { return electionPrefix + name + "/" }

// Campaign puts a candidate in an election's line, with a lease of ttl
// seconds (see participant), and waits up to wait for it to lead (concurrency.Election's
// Campaign: lead when every older candidate is gone). When wait runs out, the
// candidacy is withdrawn and ErrOtherLeader comes, a Refusal with the leader
// and the place the candidate stood (behind the leader; 1: next).
func (s *Store) Campaign(ctx context.Context, election, name string, value json.RawMessage, ttl int64, wait time.Duration) (Candidate, error) {
	prefix := electionKeys(election)
	if value == nil {
		value = json.RawMessage("null")
	}
	val, _ := json.Marshal(candidateValue{Candidate: name, Value: value})
	p, err := s.newParticipant(ctx, prefix, ttl, wait > 0)
	if err != nil {
		return Candidate{}, err
	}
	tctx, cancel := s.op(ctx)
	resp, err := s.cli.Txn(tctx).Then(
		clientv3.OpPut(p.key, string(val), clientv3.WithLease(p.lease())),
		// this candidate (the newest key) and the one just ahead of it
		clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(2), clientv3.WithKeysOnly()),
	).Commit()
	cancel()
	if err != nil {
		s.leave(p)
		return Candidate{}, wrap(err)
	}
	p.rev = resp.Header.Revision
	me := Candidate{Election: election, Name: name, Value: value, Token: p.rev, TTL: ttl}
	var ahead string
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) == 2 {
		ahead = string(kvs[1].Key)
	}
	if ahead == "" {
		if err = s.served(ctx, p, true); err == nil {
			return me, nil
		}
	} else if wait > 0 {
		turn := func(ctx context.Context) error { return s.awaitTurn(ctx, prefix, me.Token, ahead, me.Token+1) }
		if err = s.serveAfter(ctx, p, wait, true, turn); err == nil {
			return me, nil
		}
	}
	s.leave(p) // the candidacy is withdrawn at once
	if ctx.Err() != nil || (err != nil && !errors.Is(err, context.DeadlineExceeded)) {
		return Candidate{}, err
	}
	// Who leads, and where this candidate stood.
	gctx, cancel := s.op(ctx)
	defer cancel()
	now, err := s.cli.Txn(gctx).Then(
		clientv3.OpGet(prefix, clientv3.WithFirstCreate()...),
		opAhead(prefix, me.Token)).Commit()
	if err != nil {
		return Candidate{}, wrap(err)
	}
	refusal := &Refusal{Kind: ErrOtherLeader, Position: int64(len(now.Responses[1].GetResponseRange().Kvs))} // the leader is among those ahead
	if kvs := now.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		refusal.Holder, _ = candidateOf(kvs[0])
	}
	return Candidate{}, refusal
}

// Leader returns an election's leader, with the seconds left on its lease, and its line.
func (s *Store) Leader(ctx context.Context, election string) (Election, error) {
	all, err := s.elections(ctx, electionKeys(election))
	if err != nil {
		return Election{}, err
	}
	if len(all) == 0 {
		return Election{}, ErrNoLeader
	}
	return all[0], nil
}

// Elections lists every election that has a leader.
func (s *Store) Elections(ctx context.Context) ([]Election, error) {
	return s.elections(ctx, electionPrefix)
}

func (s *Store) elections(ctx context.Context, prefix string) ([]Election, error) {
	kvs, left, err := s.leasedKeys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	byName := map[string]*Election{}
	out := []Election{}
	var names []string
	for name, i := range arrivals(kvs, left, electionPrefix) {
		candidate, value := candidateOf(kvs[i])
		e := byName[name]
		if e == nil {
			e = &Election{Name: name, Leader: candidate, Value: value, Token: kvs[i].CreateRevision, TTLLeft: left[i]}
			byName[name] = e
			names = append(names, name)
		}
		e.Candidates = append(e.Candidates, candidate)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, *byName[n])
	}
	return out, nil
}

// leaderKey is the leader's key when token is the leader's: ErrNoLeader when
// nobody leads, ErrNotLeader when someone else does.
func (s *Store) leaderKey(ctx context.Context, election string, token int64) (*mvccpb.KeyValue, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, electionKeys(election), clientv3.WithFirstCreate()...)
	if err != nil {
		return nil, wrap(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrNoLeader
	}
	if resp.Kvs[0].CreateRevision != token {
		return nil, ErrNotLeader
	}
	return resp.Kvs[0], nil
}

// Proclaim lets the leader announce a new value, as concurrency.Election's
// Proclaim: the key keeps its lease and its place.
func (s *Store) Proclaim(ctx context.Context, election string, token int64, value json.RawMessage) (Candidate, error) {
	kv, err := s.leaderKey(ctx, election, token)
	if err != nil {
		return Candidate{}, err
	}
	name, _ := candidateOf(kv)
	val, _ := json.Marshal(candidateValue{Candidate: name, Value: value})
	tctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(string(kv.Key)), "=", token)).
		Then(clientv3.OpPut(string(kv.Key), string(val), clientv3.WithIgnoreLease())).
		Commit()
	if err != nil {
		return Candidate{}, wrap(err)
	}
	if !resp.Succeeded {
		return Candidate{}, ErrNoLeader // it expired or resigned in between
	}
	return Candidate{Election: election, Name: name, Value: value, Token: token}, nil
}

// RenewLeader renews the leader's lease and returns its TTL.
func (s *Store) RenewLeader(ctx context.Context, election string, token int64) (int64, error) {
	kv, err := s.leaderKey(ctx, election, token)
	if err != nil {
		return 0, err
	}
	return s.renew(ctx, clientv3.LeaseID(kv.Lease), ErrNoLeader)
}

// Resign ends the leadership of token's holder: the next candidate in line leads at once.
func (s *Store) Resign(ctx context.Context, election string, token int64) error {
	kv, err := s.leaderKey(ctx, election, token)
	if err != nil {
		return err
	}
	if err := s.withdraw(ctx, string(kv.Key), token, ErrNoLeader); err != nil {
		return err
	}
	var v candidateValue
	if kv.Lease != 0 && json.Unmarshal(kv.Value, &v) == nil && v.Candidate != "" {
		// An HTTP candidate's lease is its candidacy's alone: it would only linger.
		// A Go program's session lease may hold more than this key: left alone.
		s.revoke(clientv3.LeaseID(kv.Lease))
	}
	return nil
}
