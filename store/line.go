package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Locks, elections and semaphores are each a line: etcd's queue recipe, as in
// clientv3/concurrency. Every place in a line is a key named by its own lease,
// and the key's create revision is both its place and its token (a fencing
// token: strictly increasing from one grant to the next). The first limit
// places hold (the leader, a semaphore's limite holders) and the others wait.
// A lock's line only waits: its first waiter moves out of line to the lock's
// own key (/locks/{recurso}, the original's layout) once that key is free.
//
// A request that may wait (aguardar) joins bound to a short lease, which the
// server renews, with the place's own lease, while the request is open (the
// open request is the heartbeat): if the etcdapi process dies, its waiters
// leave the line within waiterTTL, not within their own TTL. Once it holds,
// the place is bound to its own lease alone, whose TTL starts afresh: from
// then on only the client's renovar keeps it.

// waiterTTL is the short lease of a place that may wait, in seconds: a stall
// of the process (or of its way to etcd) of about two thirds of it loses the
// waiter its place.
const waiterTTL = 5

// waiterEvents counts the watch events waiters receive (tests and benchmarks read it).
var waiterEvents atomic.Int64

// A line is one lock's, election's or semaphore's: the keys under prefix,
// named by lease, in arrival order.
type line struct {
	prefix string
	// limit is how many places at the front are served: the first limit
	// keys hold (an election's leader, a semaphore's holders); in a lock's
	// line, 1: its first waiter may take the lock's key. 0 when a semaphore's
	// is not known: then its holders' keys say it (see holding).
	limit   int64
	lockKey string // a lock's: where its holder goes, out of line
	// the errors of a join whose wait ran out, of a token when nobody holds,
	// and of a token that does not hold while someone does
	full, vacant, notHolder error
	holder                  func(*mvccpb.KeyValue) string // whom a holder's key names
	listsTTLs               bool                          // its refusal shows each holder's seconds left (a semaphore's)
}

func lockLine(resource string) line {
	return line{prefix: locksQueuePrefix + resource + "/", limit: 1, lockKey: locksPrefix + resource,
		full: ErrLockHeld, vacant: ErrLockNotFound, notHolder: ErrNotHolder, holder: lockHolder}
}

func electionLine(name string) line {
	return line{prefix: electionPrefix + name + "/", limit: 1,
		full: ErrOtherLeader, vacant: ErrNoLeader, notHolder: ErrNotLeader, holder: candidateName}
}

func semaphoreLine(name string, limit int64) line {
	return line{prefix: semaphorePrefix + name + "/", limit: limit,
		full: ErrNoSlot, vacant: ErrSlotNotFound, notHolder: ErrNotOccupant, holder: slotHolder, listsTTLs: true}
}

// lineOf is the line of kind, as a Guard names it, called name.
func lineOf(kind, name string) line {
	switch kind {
	case "lock":
		return lockLine(name)
	case "eleicao":
		return electionLine(name)
	case "semaforo":
		return semaphoreLine(name, 0)
	}
	panic("unknown kind of line: " + kind)
}

// Holder is a place that holds a line: a lock's holder, a leader, one of a
// semaphore's holders.
type Holder struct {
	Name    string `json:"holder"`
	Token   int64  `json:"token"`
	TTLLeft int64  `json:"ttl_restante"`
}

// A place is one request's key in a line.
type place struct {
	key   string
	token int64            // the key's create revision, once it joined
	lease clientv3.LeaseID // its own, of the client's TTL, which names the key
	// standIn is the short lease a request that may wait joins with (0 when
	// it may not wait). While it waits, alive ends when it holds or leaves, or
	// with the cause ErrPlaceLost when one of its leases is lost (ErrUnavailable
	// when etcd stopped answering its keep-alives).
	standIn clientv3.LeaseID
	alive   context.Context
	stop    context.CancelFunc
	waited  bool // its own lease then needs a fresh TTL when it holds
}

// join puts a request in line l with its key holding value, and waits up to
// wait for it to hold. A lock's key, when taken, holds what taken() returns
// then; a free lock with nobody in line is taken in the joining transaction.
// When wait is 0, a lock or an election that cannot be had at once is refused
// without joining. admit, when given, may refuse the line's holders (a
// semaphore's limit). join returns the token held; a Refusal of kind l.full when wait runs
// out (or is 0) first; ErrPlaceLost when its key or a lease vanished while it
// waited. A place that does not hold leaves the line at once.
func (s *Store) join(ctx context.Context, l line, value string, taken func() string, ttl int64, wait time.Duration, admit func(holders []*mvccpb.KeyValue) error) (int64, error) {
	p, err := s.newPlace(ctx, l.prefix, ttl, wait > 0)
	if err != nil {
		return 0, err
	}
	enter := []clientv3.Op{
		clientv3.OpPut(p.key, value, clientv3.WithLease(p.joinLease())),
		// this key (the newest) and the limit+1 keys just ahead of it (with their
		// leases: etcd answers a keys-only read without them; see stillWaiting)
		clientv3.OpGet(l.prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(l.limit+2)),
	}
	if admit != nil {
		enter = append(enter, l.opHolders()) // for admit, in the same transaction
	}
	// A lock free with nobody in line is taken at once; a request that will
	// not wait for a lock or an election joins only a line it would lead, and
	// is otherwise refused from this same read, writing nothing.
	tryOnly := wait == 0 && l.limit == 1 && admit == nil // a semaphore's request is checked against its holders
	var free []clientv3.Cmp
	take, orElse := enter, enter
	if l.lockKey != "" {
		free = append(free, clientv3.Compare(clientv3.CreateRevision(l.lockKey), "=", 0))
		take = []clientv3.Op{clientv3.OpPut(l.lockKey, taken(), clientv3.WithLease(p.lease))}
	}
	if l.lockKey != "" || tryOnly {
		free = append(free, clientv3.Compare(clientv3.CreateRevision(l.prefix), "=", 0).WithPrefix())
	}
	if tryOnly {
		orElse = []clientv3.Op{l.opHolders(), opFirst(l.prefix)} // who holds, or takes it next
		if l.lockKey == "" {
			orElse = append(orElse, clientv3.OpGet(l.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())) // all ahead of where it would stand
		}
	}
	tctx, cancel := s.op(ctx)
	resp, err := s.cli.Txn(tctx).If(free...).Then(take...).Else(orElse...).Commit()
	cancel()
	if err != nil {
		s.leave(p)
		return 0, placeLost(err)
	}
	p.token = resp.Header.Revision
	switch {
	case l.lockKey != "" && resp.Succeeded:
		return s.hold(ctx, l, p, p.token)
	case tryOnly && !resp.Succeeded:
		s.leave(p)
		return 0, s.refusal(ctx, l, resp.Responses)
	}
	if admit != nil {
		if err := admit(resp.Responses[2].GetResponseRange().Kvs); err != nil {
			s.leave(p)
			return 0, err
		}
	}
	ahead := resp.Responses[1].GetResponseRange().Kvs[1:]
	if l.lockKey == "" && int64(len(ahead)) < l.limit {
		return s.hold(ctx, l, p, p.token)
	}
	if wait == 0 {
		return 0, s.refuse(ctx, l, p)
	}
	p.waited = true
	wctx, cancel := context.WithTimeout(p.alive, wait)
	token := p.token
	err = s.awaitTurn(wctx, l, p, ahead, resp.Header.Revision)
	if err == nil && l.lockKey != "" {
		token, err = s.takeLock(wctx, l, p, taken)
	}
	cancel()
	switch cause := context.Cause(p.alive); {
	case err == nil: // its turn came (a lock's key taken): hold checks the place with etcd
		return s.hold(ctx, l, p, token)
	case errors.Is(cause, ErrUnavailable):
		go s.leave(p) // the answer does not wait for etcd to come back
		return 0, cause
	case errors.Is(cause, ErrPlaceLost):
		err = ErrPlaceLost
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		return 0, s.refuse(ctx, l, p)
	}
	s.leave(p)
	return 0, err
}

// newPlace grants the leases of a request's place under prefix: its own, of
// ttl seconds, which names the key, and, when it may wait, the stand-in, kept
// alive with its own from now on.
func (s *Store) newPlace(ctx context.Context, prefix string, ttl int64, mayWait bool) (*place, error) {
	own, err := s.grant(ctx, ttl)
	if err != nil {
		return nil, err
	}
	p := &place{key: fmt.Sprintf("%s%x", prefix, int64(own)), lease: own}
	if !mayWait {
		return p, nil
	}
	if p.standIn, err = s.grant(ctx, waiterTTL); err != nil {
		s.revoke(own)
		return nil, err
	}
	alive, lost := context.WithCancelCause(ctx)
	p.alive, p.stop = alive, func() { lost(nil) }
	for _, id := range []clientv3.LeaseID{own, p.standIn} {
		ch, err := s.cli.KeepAlive(alive, id)
		if err != nil {
			s.leave(p)
			return nil, wrap(err)
		}
		go func() {
			for range ch { // drained, or the client's queue fills and it complains
			}
			if alive.Err() == nil { // not stopped: etcd's client gave the lease up
				lost(s.whyLost(id))
			}
		}()
	}
	return p, nil
}

// whyLost asks etcd why its client stopped keeping lease id alive: the
// lease is gone (revoked, or expired), and the place with it; or etcd did not
// answer in time, which is not another client's doing: 503, as for any request.
func (s *Store) whyLost(id clientv3.LeaseID) error {
	ctx, cancel := s.op(context.Background())
	defer cancel()
	resp, err := s.cli.TimeToLive(ctx, id)
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound), err == nil && resp.TTL <= 0:
		return ErrPlaceLost
	case err == nil:
		return fmt.Errorf("%w: a waiter's lease outlived its keep-alive", ErrUnavailable)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// joinLease is the lease the place joins the line with.
func (p *place) joinLease() clientv3.LeaseID {
	if p.standIn != 0 {
		return p.standIn
	}
	return p.lease
}

// opFirst reads the first key under prefix, with its value.
func opFirst(prefix string) clientv3.Op { return clientv3.OpGet(prefix, clientv3.WithFirstCreate()...) }

// opHolders reads the line's holders, with their values.
func (l line) opHolders() clientv3.Op {
	if l.lockKey != "" {
		return clientv3.OpGet(l.lockKey)
	}
	// A semaphore's line read without its limit (renovar, release, a guard)
	// learns it from its holders, never more than maxLimit of them.
	return clientv3.OpGet(l.prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(cmp.Or(l.limit, maxLimit)))
}

// awaitTurn waits until fewer than l.limit keys of the line were created
// before p's. ahead is the l.limit+1 keys just ahead of p, newest first, as
// read at revision rev. In a line of one (a lock's, an election's) only the
// key just ahead leaving changes p's turn, so p waits for that (etcd's
// waitDeletes). In a semaphore's, the first waiter (l.limit keys ahead of it)
// waits for any of them to go; one further back waits for the waiter just
// ahead of it, whose key changes when that one is served (it moves to its own
// lease) or leaves. Each then reads its place again. So a release wakes the
// first waiter, and its serving the next, not the whole line. (Watching only
// the key l.limit places ahead is not enough: a holder between that one and
// the waiter may be the one to let go.)
func (s *Store) awaitTurn(ctx context.Context, l line, p *place, ahead []*mvccpb.KeyValue, rev int64) error {
	for int64(len(ahead)) >= l.limit {
		var next string // the semaphore waiter just ahead, when p is not first in line
		var err error
		if l.limit > 1 && int64(len(ahead)) > l.limit {
			if next, err = s.stillWaiting(ctx, ahead[0]); err != nil {
				return err
			}
		}
		switch {
		case l.limit == 1:
			err = s.awaitEvent(ctx, string(ahead[0].Key), rev+1, anyEvent, clientv3.WithFilterPut())
		case next != "":
			err = s.awaitEvent(ctx, next, rev+1, anyEvent)
		default: // first in line, or behind a key that does not move when served (another client's)
			err = s.awaitEvent(ctx, l.prefix, rev+1, func(ev *clientv3.Event) bool { return ev.PrevKv == nil || ev.PrevKv.CreateRevision < p.token },
				clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithPrevKV())
		}
		if err != nil {
			return err
		}
		gctx, cancel := s.op(ctx)
		resp, err := s.cli.Get(gctx, l.prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend),
			clientv3.WithLimit(l.limit+1), clientv3.WithMaxCreateRev(p.token-1))
		cancel()
		if err != nil {
			return ctxOr(ctx, err)
		}
		ahead, rev = resp.Kvs, resp.Header.Revision
	}
	return nil
}

// stillWaiting returns kv's key when it is an etcdapi waiter's not served yet:
// bound to its stand-in lease, not to the live lease that names it (see hold),
// so it will change when served. Another client's key never moves: "" for it.
func (s *Store) stillWaiting(ctx context.Context, kv *mvccpb.KeyValue) (string, error) {
	key := string(kv.Key)
	named, err := strconv.ParseInt(key[strings.LastIndex(key, "/")+1:], 16, 64)
	if err != nil || kv.Lease == 0 || kv.Lease == named {
		return "", nil
	}
	gctx, cancel := s.op(ctx)
	defer cancel()
	ttl, err := s.cli.TimeToLive(gctx, clientv3.LeaseID(named))
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return "", ctxOr(ctx, err)
	}
	if err != nil || ttl.TTL <= 0 {
		return "", nil // named like a lease that is not there: another client's key
	}
	return key, nil
}

// takeLock moves p, first in a lock's line, out of line to the lock's key as
// soon as that key is free, in one transaction that also checks p's place is
// still there; the lock key's create revision is the token.
func (s *Store) takeLock(ctx context.Context, l line, p *place, taken func() string) (int64, error) {
	for {
		tctx, cancel := s.op(ctx)
		resp, err := s.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(l.lockKey), "=", 0), clientv3.Compare(clientv3.CreateRevision(p.key), "=", p.token)).
			Then(clientv3.OpPut(l.lockKey, taken(), clientv3.WithLease(p.lease)), clientv3.OpDelete(p.key)).
			Else(clientv3.OpGet(p.key, clientv3.WithCountOnly())).
			Commit()
		cancel()
		if err != nil {
			return 0, ctxOr(ctx, placeLost(err))
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return 0, ErrPlaceLost
		}
		if err := s.awaitEvent(ctx, l.lockKey, resp.Header.Revision+1, anyEvent, clientv3.WithFilterPut()); err != nil {
			return 0, err
		}
	}
}

// hold binds p, whose turn came, to its own lease alone, and the lease's TTL
// starts afresh. A place that holds in line moves its key to that lease, if
// the key is still the one p joined with (ErrPlaceLost when it is not); a
// lock's key was written with it. It returns token, the one p holds with; the
// place leaves the line when hold fails.
func (s *Store) hold(ctx context.Context, l line, p *place, token int64) (int64, error) {
	if p.standIn == 0 {
		return token, nil
	}
	if l.lockKey == "" {
		tctx, cancel := s.op(ctx)
		resp, err := s.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(p.key), "=", p.token)).
			// the value as it is now: a proclamation may have changed it
			Then(clientv3.OpPut(p.key, "", clientv3.WithIgnoreValue(), clientv3.WithLease(p.lease))).
			Commit()
		cancel()
		if err == nil && !resp.Succeeded {
			err = ErrPlaceLost
		}
		if err != nil {
			s.leave(p)
			return 0, placeLost(err)
		}
	}
	p.stop()
	s.revoke(p.standIn)
	if !p.waited {
		return token, nil // it holds at once: its own lease was granted a moment ago
	}
	if _, err := s.renew(ctx, p.lease, ErrPlaceLost); err != nil {
		s.leave(p)
		return 0, err
	}
	return token, nil
}

// leave takes a place out of line at once: it revokes the leases etcdapi
// granted for it, which only its key uses.
func (s *Store) leave(p *place) {
	if p.standIn != 0 {
		p.stop()
		s.revoke(p.standIn)
	}
	s.revoke(p.lease)
}

// refuse takes p out of line and tells who holds and where p stood.
func (s *Store) refuse(ctx context.Context, l line, p *place) error {
	s.leave(p)
	gctx, cancel := s.op(ctx)
	now, err := s.cli.Txn(gctx).Then(l.opHolders(), opFirst(l.prefix),
		// the keys ahead: keys, not a count (etcd counts before it filters by create revision)
		clientv3.OpGet(l.prefix, clientv3.WithPrefix(), clientv3.WithMaxCreateRev(p.token-1), clientv3.WithKeysOnly())).Commit()
	cancel()
	if err != nil {
		return wrap(err)
	}
	return s.refusal(ctx, l, now.Responses)
}

// refusal is the Refusal a read of l's holders, its first key and, when p
// stood in line, the keys ahead of p (read) makes: the holders (or, between
// two holders of a lock, the next one, taking it now) and p's place (1: next;
// 0 when it did not stand in line).
func (s *Store) refusal(ctx context.Context, l line, read []*etcdserverpb.ResponseOp) error {
	kvs := read[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		kvs = read[1].GetResponseRange().Kvs
	}
	r := &Refusal{Kind: l.full, Holders: make([]Holder, 0, len(kvs))}
	if len(read) > 2 {
		r.Position = int64(len(read[2].GetResponseRange().Kvs)) + 1
		if l.lockKey == "" {
			r.Position = max(r.Position-l.limit, 1) // the holders stand in line
		}
	}
	left := make([]int64, len(kvs))
	if l.listsTTLs {
		var err error
		if left, err = s.ttlsLeft(ctx, leases(kvs)); err != nil {
			return err
		}
	}
	for i, kv := range kvs {
		if left[i] >= 0 { // -1: expired a moment ago
			r.Holders = append(r.Holders, Holder{Name: l.holder(kv), Token: kv.CreateRevision, TTLLeft: left[i]})
		}
	}
	return r
}

// holders reads who holds l now, in arrival order: a lock's holder, an
// election's leader, a semaphore's first limite keys (the limit as its keys say).
func (s *Store) holders(ctx context.Context, l line) ([]*mvccpb.KeyValue, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Do(ctx, l.opHolders())
	if err != nil {
		return nil, wrap(err)
	}
	kvs := resp.Get().Kvs
	return kvs[:min(l.holding(kvs), int64(len(kvs)))], nil
}

// held is the key of the place that holds l with token: l.vacant when nobody
// holds, l.notHolder when token does not (a waiter's, or no longer).
func (s *Store) held(ctx context.Context, l line, token int64) (*mvccpb.KeyValue, error) {
	holders, err := s.holders(ctx, l)
	if err != nil {
		return nil, err
	}
	if kv := withToken(holders, token); kv != nil {
		return kv, nil
	}
	if len(holders) == 0 {
		return nil, l.vacant
	}
	return nil, l.notHolder
}

// withToken is the key of kvs created at token, or nil.
func withToken(kvs []*mvccpb.KeyValue, token int64) *mvccpb.KeyValue {
	if i := slices.IndexFunc(kvs, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision == token }); i >= 0 {
		return kvs[i]
	}
	return nil
}

// holding is how many places hold the line whose first keys are kvs.
func (l line) holding(kvs []*mvccpb.KeyValue) int64 {
	if l.limit > 0 {
		return l.limit
	}
	return limitOf(kvs)
}

// Renew renews the lease of the place that holds the line of kind (as a Guard
// names it) called name with token, and returns its TTL.
func (s *Store) Renew(ctx context.Context, kind, name string, token int64) (int64, error) {
	l := lineOf(kind, name)
	kv, err := s.held(ctx, l, token)
	if err != nil || kv.Lease == 0 {
		return 0, err // without a lease (another client's key) it never expires: 0 s, as listed
	}
	return s.renew(ctx, clientv3.LeaseID(kv.Lease), l.vacant)
}

// Release lets go of the place that holds the line of kind called name with
// token: the next in line takes it at once. Its key alone goes, never its
// lease: another client's session may hold other keys on it, and etcdapi's
// own, empty now, ends by its TTL.
func (s *Store) Release(ctx context.Context, kind, name string, token int64) error {
	l := lineOf(kind, name)
	key := l.lockKey // known: one transaction does
	if key == "" {
		kv, err := s.held(ctx, l, token)
		if err != nil {
			return err
		}
		key = string(kv.Key)
	}
	tctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", token)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	switch {
	case err != nil:
		return wrap(err)
	case resp.Succeeded:
		return nil
	case l.lockKey != "" && len(resp.Responses[0].GetResponseRange().Kvs) > 0:
		return l.notHolder
	}
	return l.vacant // it expired or was released in between
}

// queue is one line as listed: its live places in arrival order.
type queue struct {
	name string
	kvs  []*mvccpb.KeyValue
	left []int64 // seconds left on each one's lease
}

// queues lists the lines under prefix (all of a kind, whose keys are
// kindPrefix+name+"/"+lease hex, or the one prefix names), by name.
func (s *Store) queues(ctx context.Context, kindPrefix, prefix string) ([]queue, error) {
	kvs, left, err := s.leasedKeys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	order := make([]int, 0, len(kvs))
	for i := range kvs {
		if left[i] >= 0 { // a key without a lease (another client's) has 0
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(kvs[a].CreateRevision, kvs[b].CreateRevision) })
	at := map[string]int{} // a line's index in out
	out := []queue{}
	for _, i := range order {
		key := strings.TrimPrefix(string(kvs[i].Key), kindPrefix)
		name, _, inLine := strings.Cut(key, "/") // a line's name has no "/": a route's parameter
		if !inLine || name == "" {
			continue // not a place's key
		}
		n, ok := at[name]
		if !ok {
			n, at[name] = len(out), len(out)
			out = append(out, queue{name: name})
		}
		out[n].kvs, out[n].left = append(out[n].kvs, kvs[i]), append(out[n].left, left[i])
	}
	slices.SortFunc(out, func(a, b queue) int { return cmp.Compare(a.name, b.name) })
	return out, nil
}

// awaitEvent watches key (with opts: a prefix, a filter) from revision rev
// until an event for which done holds, or etcd compacted its history past rev.
// It returns nil then, ctx's error when ctx ends first, ErrUnavailable when
// the watch breaks.
func (s *Store) awaitEvent(ctx context.Context, key string, rev int64, done func(*clientv3.Event) bool, opts ...clientv3.OpOption) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range s.watcher.Watch(clientv3.WithRequireLeader(wctx), key, append(opts, clientv3.WithRev(rev))...) {
		if resp.CompactRevision != 0 {
			return nil // compacted past rev (a reclaim): what it waited for may be gone; the caller reads again
		}
		if err := resp.Err(); err != nil {
			return ctxOr(ctx, err)
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

// placeLost is ErrPlaceLost when err says a lease of the place was gone (the
// lease that names its key revoked while it waited), err as wrap makes it otherwise.
func placeLost(err error) error {
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return ErrPlaceLost
	}
	return wrap(err)
}

func anyEvent(*clientv3.Event) bool { return true }

// ctxOr is ctx's error when ctx ended (the failure is its doing), etcd's err otherwise.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return wrap(err)
}
