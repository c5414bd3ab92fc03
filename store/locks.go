package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const locksPrefix = "/locks/"

var errLeaseGone = errors.New("lease expired")

// Lock is a held lock. Token is the lock key's create revision: a fencing
// token that strictly increases from one holder to the next.
type Lock struct {
	Resource   string `json:"recurso"`
	Holder     string `json:"holder"`
	Token      int64  `json:"token"`
	TTL        int64  `json:"ttl"`
	TTLLeft    int64  `json:"ttl_restante"`
	AcquiredAt string `json:"adquirido_em"`
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
	ok = isObject(kv.Value) && json.Unmarshal(kv.Value, &v) == nil
	return Lock{Resource: resource, Holder: v.Holder, Token: kv.CreateRevision, TTL: v.TTL, AcquiredAt: v.AcquiredAt}, ok
}

// AcquireLock takes the lock in one transaction: create the key only if it is
// absent, bound to a lease of ttl seconds. When the lock is held it waits up to
// wait for a release, watching the key, before answering ErrLockHeld with the
// current holder.
func (s *Store) AcquireLock(ctx context.Context, resource, holder string, ttl int64, wait time.Duration) (Lock, error) {
	key := locksPrefix + resource
	lease, err := s.grant(ctx, ttl)
	if err != nil {
		return Lock{}, err
	}
	deadline := time.Now().Add(wait)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			// The lease was granted before the wait: its TTL starts at acquisition,
			// and a wait longer than the TTL needs a lease of its own.
			_, err := s.renew(ctx, lease, errLeaseGone)
			if errors.Is(err, errLeaseGone) {
				lease, err = s.grant(ctx, ttl)
			}
			if err != nil {
				s.revoke(lease)
				return Lock{}, err
			}
		}
		now := time.Now().UTC()
		val, _ := json.Marshal(lockValue{Holder: holder, AcquiredAt: now.Format(time.RFC3339Nano), TTL: ttl})
		tctx, cancel := s.op(ctx)
		resp, err := s.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
			Else(clientv3.OpGet(key)).
			Commit()
		cancel()
		if err != nil {
			s.revoke(lease)
			return Lock{}, wrap(err)
		}
		if resp.Succeeded {
			return Lock{Resource: resource, Holder: holder, Token: resp.Header.Revision, TTL: ttl, TTLLeft: ttl, AcquiredAt: now.Format(time.RFC3339Nano)}, nil
		}
		var current Lock
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			current, _ = lockOf(resource, kvs[0])
		}
		if time.Until(deadline) <= 0 || !s.awaitRelease(ctx, key, resp.Header.Revision+1, deadline) {
			s.revoke(lease)
			if err := ctx.Err(); err != nil {
				return Lock{}, err // the client left while waiting
			}
			return current, ErrLockHeld
		}
	}
}

// awaitRelease watches key from revision rev until it is deleted (released or
// expired), reporting false when the deadline or the request ends first.
func (s *Store) awaitRelease(ctx context.Context, key string, rev int64, deadline time.Time) bool {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for resp := range s.watcher.Watch(clientv3.WithRequireLeader(ctx), key, clientv3.WithRev(rev), clientv3.WithFilterPut()) {
		if resp.Err() != nil {
			return false
		}
		if len(resp.Events) > 0 {
			return true
		}
	}
	return false
}

// ReleaseLock releases a lock. With a token it releases only if that token
// still holds the lock (ErrNotHolder otherwise); token 0 forces the release.
func (s *Store) ReleaseLock(ctx context.Context, resource string, token int64) error {
	key := locksPrefix + resource
	ctx, cancel := s.op(ctx)
	defer cancel()
	var prev *mvccpb.KeyValue
	if token == 0 {
		resp, err := s.cli.Delete(ctx, key, clientv3.WithPrevKV())
		if err != nil {
			return wrap(err)
		}
		if len(resp.PrevKvs) == 0 {
			return ErrLockNotFound
		}
		prev = resp.PrevKvs[0]
	} else {
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", token)).
			Then(clientv3.OpDelete(key, clientv3.WithPrevKV())).
			Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
			Commit()
		if err != nil {
			return wrap(err)
		}
		if !resp.Succeeded {
			if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
				return ErrLockNotFound
			}
			return ErrNotHolder
		}
		if del := resp.Responses[0].GetResponseDeleteRange(); len(del.PrevKvs) > 0 {
			prev = del.PrevKvs[0]
		}
	}
	if prev != nil && prev.Lease != 0 {
		s.revoke(clientv3.LeaseID(prev.Lease)) // the key is gone already; the lease would only linger
	}
	return nil
}

// RenewLock renews the lease of the lock held with token and returns its TTL.
func (s *Store) RenewLock(ctx context.Context, resource string, token int64) (int64, error) {
	kv, err := s.lockKey(ctx, resource)
	if err != nil {
		return 0, err
	}
	if kv.CreateRevision != token {
		return 0, ErrNotHolder
	}
	return s.renew(ctx, clientv3.LeaseID(kv.Lease), ErrLockNotFound)
}

// GetLock returns a held lock with the seconds left on it.
func (s *Store) GetLock(ctx context.Context, resource string) (Lock, error) {
	kv, err := s.lockKey(ctx, resource)
	if err != nil {
		return Lock{}, err
	}
	left, err := s.ttlsLeft(ctx, []clientv3.LeaseID{clientv3.LeaseID(kv.Lease)})
	if err != nil {
		return Lock{}, err
	}
	if left[0] < 0 {
		return Lock{}, ErrLockNotFound
	}
	l, ok := lockOf(resource, kv)
	if !ok {
		return Lock{}, fmt.Errorf("%w: %s", ErrUnreadable, kv.Key)
	}
	l.TTLLeft = left[0]
	return l, nil
}

// Locks lists every held lock.
func (s *Store) Locks(ctx context.Context) ([]Lock, error) {
	kvs, left, err := s.leasedKeys(ctx, locksPrefix)
	if err != nil {
		return nil, err
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
		held = append(held, l)
	}
	s.skipped(skipped)
	return held, nil
}

func (s *Store) lockKey(ctx context.Context, resource string) (*mvccpb.KeyValue, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, locksPrefix+resource)
	if err != nil {
		return nil, wrap(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrLockNotFound
	}
	return resp.Kvs[0], nil
}
