package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	locksPrefix      = "/locks/"
	locksQueuePrefix = "/locks-fila/" // waiters: /locks-fila/{recurso}/{lease hex}
)

// Lock is a held lock. Token is the lock key's create revision: a fencing
// token that strictly increases from one holder to the next.
type Lock struct {
	Resource   string `json:"recurso"`
	Holder     string `json:"holder"`
	Token      int64  `json:"token"`
	TTL        int64  `json:"ttl"`
	TTLLeft    int64  `json:"ttl_restante"`
	AcquiredAt string `json:"adquirido_em"`
	Queue      int64  `json:"fila"` // waiters in line behind the holder
}

// lockValue is what /locks/{recurso} holds.
type lockValue struct {
	Holder     string `json:"holder"`
	AcquiredAt string `json:"adquirido_em"`
	TTL        int64  `json:"ttl"`
}

// lockOf reads a held lock; ok is false when another etcd client wrote
// something there that is not a lock (the lock is held all the same).
func lockOf(resource string, kv *mvccpb.KeyValue) (l Lock, ok bool) {
	var v lockValue
	ok = decodeObject(kv.Value, &v)
	return Lock{Resource: resource, Holder: v.Holder, Token: kv.CreateRevision, TTL: v.TTL, AcquiredAt: v.AcquiredAt}, ok
}

// AcquireLock takes the lock, waiting in its line up to wait (see join), and
// returns its token: the lock key's create revision. Its key holds the holder;
// a waiter's key in line holds {"holder"} too, so that anyone can see who waits.
func (s *Store) AcquireLock(ctx context.Context, resource, holder string, ttl int64, wait time.Duration) (int64, error) {
	inLine, _ := json.Marshal(map[string]string{"holder": holder})
	taken := func() string { // when it is taken
		v, _ := json.Marshal(lockValue{Holder: holder, AcquiredAt: time.Now().UTC().Format(time.RFC3339Nano), TTL: ttl})
		return string(v)
	}
	return s.join(ctx, lockLine(resource), string(inLine), taken, ttl, wait, nil)
}

// lockHolder is whom a lock's key names ("" when another client wrote it).
func lockHolder(kv *mvccpb.KeyValue) string {
	l, _ := lockOf("", kv)
	return l.Holder
}

// ForceRelease deletes a lock's key whoever holds it, as the original's DELETE
// without a token did. The key alone goes, never its lease (see Release).
func (s *Store) ForceRelease(ctx context.Context, resource string) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Delete(ctx, locksPrefix+resource)
	if err != nil {
		return wrap(err)
	}
	if resp.Deleted == 0 {
		return ErrLockNotFound
	}
	return nil
}

// GetLock returns a held lock with the seconds left on it and its line's length.
func (s *Store) GetLock(ctx context.Context, resource string) (Lock, error) {
	gctx, cancel := s.op(ctx)
	resp, err := s.cli.Txn(gctx).Then(
		clientv3.OpGet(locksPrefix+resource),
		clientv3.OpGet(lockLine(resource).prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())).Commit()
	cancel()
	if err != nil {
		return Lock{}, wrap(err)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return Lock{}, ErrLockNotFound
	}
	left, err := s.ttlsLeft(ctx, []clientv3.LeaseID{clientv3.LeaseID(kvs[0].Lease)})
	if err != nil {
		return Lock{}, err
	}
	if left[0] < 0 {
		return Lock{}, ErrLockNotFound
	}
	l, ok := lockOf(resource, kvs[0])
	if !ok {
		return Lock{}, fmt.Errorf("%w: %s", ErrUnreadable, kvs[0].Key)
	}
	l.TTLLeft = left[0]
	l.Queue = resp.Responses[1].GetResponseRange().Count
	return l, nil
}

// Locks lists every held lock with its line's length.
func (s *Store) Locks(ctx context.Context) ([]Lock, error) {
	kvs, left, err := s.leasedKeys(ctx, locksPrefix)
	if err != nil {
		return nil, err
	}
	gctx, cancel := s.op(ctx)
	waiters, err := s.cli.Get(gctx, locksQueuePrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	cancel()
	if err != nil {
		return nil, wrap(err)
	}
	queued := map[string]int64{}
	for _, kv := range waiters.Kvs {
		resource, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), locksQueuePrefix), "/")
		queued[resource]++
	}
	held := []Lock{}
	var skipped []string
	for i, kv := range kvs {
		if left[i] < 0 {
			continue // expired a moment ago
		}
		l, ok := lockOf(strings.TrimPrefix(string(kv.Key), locksPrefix), kv)
		if !ok {
			skipped = append(skipped, string(kv.Key))
			continue
		}
		l.TTLLeft = left[i]
		l.Queue = queued[l.Resource]
		held = append(held, l)
	}
	s.skipped(skipped)
	return held, nil
}
