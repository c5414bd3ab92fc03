package store

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Fair locks, elections and semaphores share etcd's queue recipe (as in
// clientv3/concurrency): every participant is a key named by its own lease,
// and its place in line is the key's create revision. A participant granted at
// once is bound to that lease from the start. One that must wait is bound,
// while it waits, to a short lease the server renews as long as the request is
// open (the open request is the heartbeat): if the etcdapi process dies, its
// waiters leave the line within waiterTTL, not within their own TTL (except
// a process killed between joining and moving to the short lease, one round
// trip). Once granted, the participant is bound to its own lease again, whose
// TTL starts afresh: from then on only the client's renovar keeps it.

// waiterTTL is the short lease of a waiting participant, in seconds.
const waiterTTL = 3

// errLeftLine says that a waiter's place vanished while it waited (its key
// deleted by hand, or its lease lost while etcd was unreachable): try again.
var errLeftLine = fmt.Errorf("%w: the waiter's place in line was lost", ErrUnavailable)

// participantKey is a participant's key under prefix: the lease in hex, as concurrency.Election names it.
func participantKey(prefix string, lease clientv3.LeaseID) string {
	return fmt.Sprintf("%s%x", prefix, int64(lease))
}

// A waiter is a participant waiting in line: its key, created at rev with
// value val, bound to the short lease; its own lease is kept alive meanwhile.
type waiter struct {
	key, val   string
	rev        int64
	own, short clientv3.LeaseID
	stop       context.CancelFunc // ends both heartbeats
}

// wait moves a participant that must wait onto a short lease, and keeps both
// leases alive until it is granted or leaves.
func (s *Store) wait(ctx context.Context, key, val string, rev int64, own clientv3.LeaseID) (*waiter, error) {
	short, err := s.grant(ctx, waiterTTL)
	if err != nil {
		return nil, err
	}
	hctx, stop := context.WithCancel(ctx)
	w := &waiter{key: key, val: val, rev: rev, own: own, short: short, stop: stop}
	for _, id := range []clientv3.LeaseID{own, short} {
		if err := s.heartbeat(hctx, id); err != nil {
			s.leave(w)
			return nil, err
		}
	}
	if err := s.bind(ctx, w, short); err != nil {
		s.leave(w)
		return nil, err
	}
	return w, nil
}

// heartbeat keeps a lease alive until ctx ends.
func (s *Store) heartbeat(ctx context.Context, lease clientv3.LeaseID) error {
	ch, err := s.cli.KeepAlive(ctx, lease)
	if err != nil {
		return wrap(err)
	}
	go func() {
		for range ch { // drained, or the client's queue fills and it complains
		}
	}()
	return nil
}

// bind puts the waiter's key under lease, if it is still the key created at
// its revision; errLeftLine when it is gone.
func (s *Store) bind(ctx context.Context, w *waiter, lease clientv3.LeaseID) error {
	tctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(w.key), "=", w.rev)).
		Then(clientv3.OpPut(w.key, w.val, clientv3.WithLease(lease))).
		Commit()
	if err != nil {
		return wrap(err)
	}
	if !resp.Succeeded {
		return errLeftLine
	}
	return nil
}

// granted ends a wait whose turn came. The key, when it stays (a candidate, a
// semaphore's holder; a lock's waiter key is gone, the lock's own key took the
// lease), goes back to the participant's own lease, whose TTL starts afresh.
// errLeftLine when the place or the lease vanished meanwhile.
func (s *Store) granted(ctx context.Context, w *waiter, keep bool) error {
	if keep {
		if err := s.bind(ctx, w, w.own); err != nil {
			return err
		}
	}
	w.stop()
	s.revoke(w.short)
	_, err := s.renew(ctx, w.own, errLeftLine)
	return err
}

// leave takes a waiter out of line at once.
func (s *Store) leave(w *waiter) {
	w.stop()
	s.revoke(w.short)
	s.revoke(w.own)
}

// awaitDelete watches key from revision rev until it is deleted. It returns
// nil then, ctx's error when ctx ends first, ErrUnavailable when the watch breaks.
func (s *Store) awaitDelete(ctx context.Context, key string, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range s.watcher.Watch(clientv3.WithRequireLeader(wctx), key, clientv3.WithRev(rev), clientv3.WithFilterPut()) {
		if err := resp.Err(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return wrap(err)
		}
		if len(resp.Events) > 0 {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: watch ended", ErrUnavailable)
}

// awaitTurn waits until no key under prefix was created before rev, the
// waiter's own create revision. Each waiter watches only the key just ahead of
// it (concurrency's waitDeletes), so a release wakes one waiter, not all.
// ahead is the key that was just ahead when the waiter joined, at revision
// from-1: empty when none was, and then there is nothing to wait for.
func (s *Store) awaitTurn(ctx context.Context, prefix string, rev int64, ahead string, from int64) error {
	for ahead != "" {
		if err := s.awaitDelete(ctx, ahead, from); err != nil {
			return err
		}
		gctx, cancel := s.op(ctx)
		resp, err := s.cli.Get(gctx, prefix, append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(rev-1), clientv3.WithKeysOnly())...)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return wrap(err)
		}
		ahead = ""
		if len(resp.Kvs) > 0 {
			ahead, from = string(resp.Kvs[0].Key), resp.Header.Revision+1
		}
	}
	return nil
}

// opAhead reads the keys under prefix created before rev: those ahead in line.
// Keys, not a count: etcd counts before it filters by create revision.
func opAhead(prefix string, rev int64) clientv3.Op {
	return clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithMaxCreateRev(rev-1), clientv3.WithKeysOnly())
}

// withdraw deletes a participant's key if it is still the one created at token
// (its holder's); gone when it is not.
func (s *Store) withdraw(ctx context.Context, key string, token int64, gone error) error {
	tctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", token)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return wrap(err)
	}
	if !resp.Succeeded {
		return gone
	}
	return nil
}

// arrivals yields each live participant under prefix (keys prefix+name+"/"+lease
// hex) as its name and its index in kvs and left, in arrival (create revision)
// order: the order in which they are served.
func arrivals(kvs []*mvccpb.KeyValue, left []int64, prefix string) iter.Seq2[string, int] {
	order := make([]int, 0, len(kvs))
	for i := range kvs {
		if left[i] >= 0 { // a key without a lease (another client's) has 0
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(kvs[a].CreateRevision, kvs[b].CreateRevision) })
	return func(yield func(string, int) bool) {
		for _, i := range order {
			key := strings.TrimPrefix(string(kvs[i].Key), prefix)
			slash := strings.LastIndex(key, "/")
			if slash <= 0 {
				continue // not a participant's key
			}
			if !yield(key[:slash], i) {
				return
			}
		}
	}
}
