package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// electionPrefix holds candidates as /election/{nome}/{lease hex}: the layout
// of concurrency.Election, so a Go program with etcd's own package campaigns
// in the same line as HTTP candidates. The leader is the oldest key.
const electionPrefix = "/election/"

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

// candidateName is whom a candidate's key names.
func candidateName(kv *mvccpb.KeyValue) string {
	name, _ := candidateOf(kv)
	return name
}

// Campaign puts a candidate in an election's line and waits up to wait for it
// to lead (concurrency.Election's Campaign: it leads when every older
// candidate is gone; see join). When wait runs out the candidacy is withdrawn
// and ErrOtherLeader comes, a Refusal with the leader and the place the
// candidate stood (behind the leader; 1: next). It returns the token.
func (s *Store) Campaign(ctx context.Context, election, name string, value json.RawMessage, ttl int64, wait time.Duration) (int64, error) {
	val, _ := json.Marshal(candidateValue{Candidate: name, Value: value}) // a nil value is null
	return s.join(ctx, electionLine(election), string(val), nil, ttl, wait, nil)
}

// Leader returns an election's leader, with the seconds left on its lease, and its line.
func (s *Store) Leader(ctx context.Context, election string) (Election, error) {
	all, err := s.elections(ctx, electionLine(election).prefix)
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
	lines, err := s.queues(ctx, electionPrefix, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]Election, len(lines))
	for i, q := range lines {
		leader, value := candidateOf(q.kvs[0])
		out[i] = Election{Name: q.name, Leader: leader, Value: value, Token: q.kvs[0].CreateRevision, TTLLeft: q.left[0]}
		for _, kv := range q.kvs {
			out[i].Candidates = append(out[i].Candidates, candidateName(kv))
		}
	}
	return out, nil
}

// Proclaim lets the leader announce a new value, as concurrency.Election's
// Proclaim: the key keeps its lease and its place. It returns the leader's name.
func (s *Store) Proclaim(ctx context.Context, election string, token int64, value json.RawMessage) (string, error) {
	kv, err := s.held(ctx, electionLine(election), token)
	if err != nil {
		return "", err
	}
	name := candidateName(kv)
	val, _ := json.Marshal(candidateValue{Candidate: name, Value: value})
	tctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(string(kv.Key)), "=", token)).
		Then(clientv3.OpPut(string(kv.Key), string(val), clientv3.WithIgnoreLease())).
		Commit()
	if err != nil {
		return "", wrap(err)
	}
	if !resp.Succeeded {
		return "", ErrNoLeader // it expired or resigned in between
	}
	return name, nil
}
