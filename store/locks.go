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

// AcquireLock takes the lock in one transaction: create the key only if it is
// absent and nobody waits in line, bound to a lease of ttl seconds. When it is
// held, a request that will wait joins the line in that same transaction and
// is served in arrival order (concurrency.Mutex's recipe): it waits for the
// waiter just ahead of it to leave, then for the holder to let go. When wait
// runs out it leaves the line and answers ErrLockHeld, a Refusal with the
// current holder and the place it stood in line.
func (s *Store) AcquireLock(ctx context.Context, resource, holder string, ttl int64, wait time.Duration) (Lock, error) {
	key, queue := locksPrefix+resource, lockQueue(resource)
	p, err := s.newParticipant(ctx, queue, ttl, wait > 0)
	if err != nil {
		return Lock{}, err
	}
	orElse := []clientv3.Op{clientv3.OpGet(key)}
	if wait == 0 {
		// the first in line: it holds the lock, or is taking it over this instant
		orElse = append(orElse, clientv3.OpGet(queue, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1)))
	} else {
		inLine, _ := json.Marshal(map[string]string{"holder": holder})
		orElse = append(orElse,
			clientv3.OpPut(p.key, string(inLine), clientv3.WithLease(p.lease())),
			// this waiter (the newest key) and the one just ahead of it
			clientv3.OpGet(queue, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(2), clientv3.WithKeysOnly()))
	}
	l, val := newLock(resource, holder, ttl)
	tctx, cancel := s.op(ctx)
	resp, err := s.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0), clientv3.Compare(clientv3.CreateRevision(queue), "=", 0).WithPrefix()).
		Then(clientv3.OpPut(key, val, clientv3.WithLease(p.own))).
		Else(orElse...).
		Commit()
	cancel()
	if err != nil {
		s.leave(p)
		return Lock{}, wrap(err)
	}
	if resp.Succeeded {
		l.Token = resp.Header.Revision
		if err = s.served(ctx, p, false); err == nil {
			return l, nil
		}
		s.leave(p)
		return Lock{}, err
	}
	if wait == 0 {
		s.leave(p)
		var current Lock
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			current, _ = lockOf(resource, kvs[0])
		} else if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
			current, _ = lockOf(resource, kvs[0]) // the next holder, not yet holding
		}
		return Lock{}, &Refusal{Kind: ErrLockHeld, Holder: current.Holder}
	}

	p.rev = resp.Header.Revision // this waiter's place in line
	var ahead string
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) == 2 {
		ahead = string(kvs[1].Key)
	}
	turn := func(ctx context.Context) (err error) {
		l, err = s.awaitLock(ctx, resource, holder, ttl, p, ahead)
		return err
	}
	if err = s.serveAfter(ctx, p, wait, false, turn); err == nil {
		return l, nil
	}
	s.leave(p) // leave the line at once
	if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return Lock{}, err
	}
	// Out of time: who holds it, and where this waiter stood.
	gctx, cancel := s.op(ctx)
	defer cancel()
	now, err := s.cli.Txn(gctx).Then(
		clientv3.OpGet(key),
		opAhead(queue, p.rev)).Commit()
	if err != nil {
		return Lock{}, wrap(err)
	}
	var current Lock
	if kvs := now.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		current, _ = lockOf(resource, kvs[0])
	}
	return Lock{}, &Refusal{Kind: ErrLockHeld, Holder: current.Holder, Position: int64(len(now.Responses[1].GetResponseRange().Kvs)) + 1}
}

// awaitLock waits, until ctx ends, for the turn of the waiter p, then for the
// lock to be free; it then moves from the line to the lock in one
// transaction. The waiter first in line alone watches the lock's key.
func (s *Store) awaitLock(ctx context.Context, resource, holder string, ttl int64, p *participant, ahead string) (Lock, error) {
	key, queue := locksPrefix+resource, lockQueue(resource)
	if err := s.awaitTurn(ctx, queue, p.rev, ahead, p.rev+1); err != nil {
		return Lock{}, err
	}
	for {
		l, val := newLock(resource, holder, ttl)
		tctx, cancel := s.op(ctx)
		resp, err := s.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0), clientv3.Compare(clientv3.CreateRevision(p.key), "=", p.rev)).
			Then(clientv3.OpPut(key, val, clientv3.WithLease(p.own)), clientv3.OpDelete(p.key)).
			Else(clientv3.OpGet(p.key, clientv3.WithCountOnly())).
			Commit()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return Lock{}, ctx.Err()
			}
			return Lock{}, wrap(err)
		}
		if resp.Succeeded {
			l.Token = resp.Header.Revision
			return l, nil
		}
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return Lock{}, ErrPlaceLost
		}
		if err := s.awaitDelete(ctx, key, resp.Header.Revision+1); err != nil {
			return Lock{}, err
		}
	}
}

func lockQueue(resource string) string { return locksQueuePrefix + resource + "/" }

// newLock is a lock taken now, and the value its key holds.
func newLock(resource, holder string, ttl int64) (Lock, string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	val, _ := json.Marshal(lockValue{Holder: holder, AcquiredAt: now, TTL: ttl})
	return Lock{Resource: resource, Holder: holder, TTL: ttl, TTLLeft: ttl, AcquiredAt: now}, string(val)
}

// ReleaseLock releases a lock. With a token it releases only if that token
// still holds the lock (ErrNotHolder otherwise); token 0 forces the release.
// The key alone goes, never its lease: see ReleaseSlot.
func (s *Store) ReleaseLock(ctx context.Context, resource string, token int64) error {
	key := locksPrefix + resource
	ctx, cancel := s.op(ctx)
	defer cancel()
	if token == 0 {
		resp, err := s.cli.Delete(ctx, key)
		if err != nil {
			return wrap(err)
		}
		if resp.Deleted == 0 {
			return ErrLockNotFound
		}
		return nil
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", token)).
		Then(clientv3.OpDelete(key)).
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

// GetLock returns a held lock with the seconds left on it and its line's length.
func (s *Store) GetLock(ctx context.Context, resource string) (Lock, error) {
	gctx, cancel := s.op(ctx)
	resp, err := s.cli.Txn(gctx).Then(
		clientv3.OpGet(locksPrefix+resource),
		clientv3.OpGet(lockQueue(resource), clientv3.WithPrefix(), clientv3.WithCountOnly())).Commit()
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
