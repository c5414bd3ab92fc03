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
// clientv3/concurrency): every participant is a key bound to its own lease,
// and its place in line is the key's create revision. One lease serves a
// participant from the moment it joins until it lets go: while it waits, the
// server renews it (the open request is the heartbeat); once granted, only the
// client's renovar does.

// errLeftLine says that a waiter's place vanished while it waited (its key
// deleted by hand, or its lease lost while etcd was unreachable): try again.
var errLeftLine = fmt.Errorf("%w: the waiter's place in line was lost", ErrUnavailable)

// participantKey is a participant's key under prefix: the lease in hex, as concurrency.Election names it.
func participantKey(prefix string, lease clientv3.LeaseID) string {
	return fmt.Sprintf("%s%x", prefix, int64(lease))
}

// heartbeat keeps a waiter's lease alive until stop is called or ctx ends.
func (s *Store) heartbeat(ctx context.Context, lease clientv3.LeaseID) (stop context.CancelFunc, err error) {
	ctx, stop = context.WithCancel(ctx)
	ch, err := s.cli.KeepAlive(ctx, lease)
	if err != nil {
		stop()
		return nil, wrap(err)
	}
	go func() {
		for range ch { // drained, or the client's queue fills and it complains
		}
	}()
	return stop, nil
}

// granted ends a waiter's heartbeat and starts its grant's TTL afresh: from
// now on only the client keeps it alive. ErrLeaseGone when it expired meanwhile.
func (s *Store) granted(ctx context.Context, lease clientv3.LeaseID, stop context.CancelFunc) error {
	if stop != nil {
		stop()
	}
	_, err := s.renew(ctx, lease, errLeftLine)
	return err
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
