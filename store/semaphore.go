package store

import (
	"context"
	"encoding/json"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// semaphorePrefix holds a semaphore's holders and waiters as
// /semaphores/{nome}/{lease hex}, in one line ordered by create revision: the
// first limite keys hold it (the semaphore as Consul documents it, with
// etcd's revisions for the order).
const semaphorePrefix = "/semaphores/"

// Semaphore is who holds a semaphore and how many wait.
type Semaphore struct {
	Name    string   `json:"semaforo"`
	Limit   int64    `json:"limite"`
	Holders []Holder `json:"ocupantes"`
	Queue   int64    `json:"fila"`
}

// slotValue is what a holder's or waiter's key holds.
type slotValue struct {
	Holder string `json:"holder"`
	Limit  int64  `json:"limite"`
	TTL    int64  `json:"ttl"`
}

func slotOf(kv *mvccpb.KeyValue) slotValue {
	var v slotValue
	json.Unmarshal(kv.Value, &v)
	return v
}

func slotHolder(kv *mvccpb.KeyValue) string { return slotOf(kv).Holder }

// maxLimit is the most places a semaphore may have (SPEC: limite 1..1000).
const maxLimit = 1000

// limitOf is a semaphore's limit as the first keys in its line were written
// with: the first limite found (a key without one, another client's, does not
// decide), 1 when none says.
func limitOf(kvs []*mvccpb.KeyValue) int64 {
	for _, kv := range kvs {
		if l := slotOf(kv).Limit; l > 0 {
			return l
		}
	}
	return 1
}

// AcquireSlot takes a place among a semaphore's limit holders, waiting in line
// up to wait (see join), and returns its token. A Refusal: ErrLimitMismatch
// with the limit in use when the oldest holder written with a limit (a key
// without one, another client's, does not decide) has another, so a newer key
// with a wrong limit, about to be refused, never decides; ErrNoSlot with the
// holders when wait runs out.
func (s *Store) AcquireSlot(ctx context.Context, name, holder string, limit, ttl int64, wait time.Duration) (int64, error) {
	l := semaphoreLine(name, limit)
	val, _ := json.Marshal(slotValue{Holder: holder, Limit: limit, TTL: ttl})
	return s.join(ctx, l, string(val), nil, ttl, wait, func(holders []*mvccpb.KeyValue) error {
		for _, kv := range holders {
			if inUse := slotOf(kv).Limit; inUse > 0 { // the oldest holder with a limit decides
				if inUse != limit {
					return &Refusal{Kind: ErrLimitMismatch, Limit: inUse}
				}
				return nil
			}
		}
		return nil
	})
}

// GetSemaphore returns a semaphore's holders, with the seconds left on each, and how many wait.
func (s *Store) GetSemaphore(ctx context.Context, name string) (Semaphore, error) {
	all, err := s.semaphores(ctx, semaphoreLine(name, 0).prefix)
	if err != nil {
		return Semaphore{}, err
	}
	if len(all) == 0 {
		return Semaphore{}, ErrSemaphoreNotFound
	}
	return all[0], nil
}

// Semaphores lists every semaphore someone holds.
func (s *Store) Semaphores(ctx context.Context) ([]Semaphore, error) {
	return s.semaphores(ctx, semaphorePrefix)
}

func (s *Store) semaphores(ctx context.Context, prefix string) ([]Semaphore, error) {
	lines, err := s.queues(ctx, semaphorePrefix, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]Semaphore, len(lines))
	for i, q := range lines {
		limit := limitOf(q.kvs)
		holding := min(limit, int64(len(q.kvs)))
		out[i] = Semaphore{Name: q.name, Limit: limit, Holders: make([]Holder, holding), Queue: int64(len(q.kvs)) - holding}
		for j, kv := range q.kvs[:holding] {
			out[i].Holders[j] = Holder{Name: slotHolder(kv), Token: kv.CreateRevision, TTLLeft: q.left[j]}
		}
	}
	return out, nil
}
