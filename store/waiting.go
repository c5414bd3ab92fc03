package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Fair locks, elections and semaphores share etcd's queue recipe (as in
// clientv3/concurrency): every participant is a key named by its own lease,
// and its place in line is the key's create revision. A participant whose
// request may wait (aguardar) joins the line bound to a short lease instead,
// which the server renews, with its own, as long as the request is open (the
// open request is the heartbeat): if the etcdapi process dies, its waiters
// leave the line within waiterTTL, not within their own TTL. Once served, the
// participant is bound to its own lease, whose TTL starts afresh: from then on
// only the client's renovar keeps it.

// waiterTTL is the short lease of a participant that may wait, in seconds: a
// stall of the process (or of its way to etcd) of about two thirds of it
// loses the waiter its place.
const waiterTTL = 5

// waiterEvents counts the watch events waiters receive (tests and benchmarks read it).
var waiterEvents atomic.Int64

// A participant is one request's place in a line.
type participant struct {
	key        string
	rev        int64            // the key's create revision, once it joined
	own, short clientv3.LeaseID // short is 0 when the request may not wait
	// While a participant that may wait is in line, alive ends when it is
	// served or leaves, or with the cause ErrPlaceLost when a lease is lost.
	alive  context.Context
	stop   context.CancelFunc
	waited bool // its own lease then needs a fresh TTL when it is served
}

// newParticipant grants the leases of a request's place under prefix: its
// own, of ttl seconds, which names the key, and, when it may wait, the short
// one, kept alive with its own from now on.
func (s *Store) newParticipant(ctx context.Context, prefix string, ttl int64, mayWait bool) (*participant, error) {
	own, err := s.grant(ctx, ttl)
	if err != nil {
		return nil, err
	}
	p := &participant{key: fmt.Sprintf("%s%x", prefix, int64(own)), own: own}
	if !mayWait {
		return p, nil
	}
	if p.short, err = s.grant(ctx, waiterTTL); err != nil {
		s.revoke(own)
		return nil, err
	}
	alive, lost := context.WithCancelCause(ctx)
	p.alive, p.stop = alive, func() { lost(nil) }
	for _, id := range []clientv3.LeaseID{own, p.short} {
		ch, err := s.cli.KeepAlive(alive, id)
		if err != nil {
			s.leave(p)
			return nil, wrap(err)
		}
		go func() {
			for range ch { // drained, or the client's queue fills and it complains
			}
			lost(ErrPlaceLost) // expired, or etcd unreachable past it (nothing once stopped)
		}()
	}
	return p, nil
}

// lease is the lease the participant joins the line with.
func (p *participant) lease() clientv3.LeaseID {
	if p.short != 0 {
		return p.short
	}
	return p.own
}

// serveAfter waits, up to wait, until turn says the participant's turn came,
// and then serves it; ErrPlaceLost as soon as one of its leases is lost.
func (s *Store) serveAfter(ctx context.Context, p *participant, wait time.Duration, keyStays bool, turn func(context.Context) error) error {
	p.waited = true
	wctx, cancel := context.WithTimeout(p.alive, wait)
	err := turn(wctx)
	cancel()
	if errors.Is(context.Cause(p.alive), ErrPlaceLost) {
		return ErrPlaceLost
	}
	if err != nil {
		return err
	}
	return s.served(ctx, p, keyStays)
}

// served binds a participant whose turn came to its own lease alone, and the
// lease's TTL starts afresh. keyStays: its key stays in line (a leader, a
// semaphore's holder) and moves to that lease; a lock's waiter key is gone, the
// lock's own key took the lease. ErrPlaceLost when its place or its lease
// vanished meanwhile.
func (s *Store) served(ctx context.Context, p *participant, keyStays bool) error {
	if p.short == 0 {
		return nil
	}
	if keyStays {
		tctx, cancel := s.op(ctx)
		resp, err := s.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(p.key), "=", p.rev)).
			// the value as it is now: a proclamation may have changed it
			Then(clientv3.OpPut(p.key, "", clientv3.WithIgnoreValue(), clientv3.WithLease(p.own))).
			Commit()
		cancel()
		if err != nil {
			return wrap(err)
		}
		if !resp.Succeeded {
			return ErrPlaceLost
		}
	}
	p.stop()
	s.revoke(p.short)
	if !p.waited {
		return nil // served at once: its own lease was granted a moment ago
	}
	_, err := s.renew(ctx, p.own, ErrPlaceLost)
	return err
}

// leave takes a participant out of line at once.
func (s *Store) leave(p *participant) {
	if p.short != 0 {
		p.stop()
		s.revoke(p.short)
	}
	s.revoke(p.own)
}

// awaitDelete watches key from revision rev until it is deleted; as awaitEvent.
func (s *Store) awaitDelete(ctx context.Context, key string, rev int64) error {
	return s.awaitEvent(ctx, key, rev, func(*clientv3.Event) bool { return true }, clientv3.WithFilterPut())
}

// awaitEvent watches key (with opts: a prefix, a filter) from revision rev
// until an event for which done holds. It returns nil then, ctx's error when
// ctx ends first, ErrUnavailable when the watch breaks.
func (s *Store) awaitEvent(ctx context.Context, key string, rev int64, done func(*clientv3.Event) bool, opts ...clientv3.OpOption) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range s.watcher.Watch(clientv3.WithRequireLeader(wctx), key, append(opts, clientv3.WithRev(rev))...) {
		if err := resp.Err(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return wrap(err)
		}
		waiterEvents.Add(int64(len(resp.Events)))
		if slices.ContainsFunc(resp.Events, done) {
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
