package store

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// semaphorePrefix holds a semaphore's holders and waiters as
// /semaphores/{nome}/{lease hex}, in one line ordered by create revision: the
// first limite keys hold it (the semaphore as Consul documents it, with
// etcd's revisions for the order).
const semaphorePrefix = "/semaphores/"

// Slot is a place in a semaphore; Token is its key's create revision.
type Slot struct {
	Semaphore string `json:"-"`
	Holder    string `json:"holder"`
	Token     int64  `json:"token"`
	Limit     int64  `json:"-"`
	TTL       int64  `json:"-"`
	TTLLeft   int64  `json:"ttl_restante"`
}

// Semaphore is who holds a semaphore and how many wait.
type Semaphore struct {
	Name    string `json:"semaforo"`
	Limit   int64  `json:"limite"`
	Holders []Slot `json:"ocupantes"`
	Queue   int64  `json:"fila"`
}

// slotValue is what a holder's or waiter's key holds.
type slotValue struct {
	Holder string `json:"holder"`
	Limit  int64  `json:"limite"`
	TTL    int64  `json:"ttl"`
}

func semaphoreKeys(name string) string { return semaphorePrefix + name + "/" }

// otherLimit is a limit other than limit that one of the holders (the first
// keys in line) was written with, or 0. A key whose value carries no limit
// (another client's) does not decide.
func otherLimit(holders []*mvccpb.KeyValue, limit int64) int64 {
	for _, kv := range holders {
		if l := slotOf(kv).Limit; l > 0 && l != limit {
			return l
		}
	}
	return 0
}

func slotOf(kv *mvccpb.KeyValue) slotValue {
	var v slotValue
	json.Unmarshal(kv.Value, &v)
	return v
}

// AcquireSlot takes a place among a semaphore's limit holders, waiting in line
// up to wait. A Refusal: ErrLimitMismatch with the limit in use when the
// holders use another limit; ErrNoSlot with the holders when wait runs out.
func (s *Store) AcquireSlot(ctx context.Context, name, holder string, limit, ttl int64, wait time.Duration) (Slot, error) {
	prefix := semaphoreKeys(name)
	val, _ := json.Marshal(slotValue{Holder: holder, Limit: limit, TTL: ttl})
	p, err := s.newParticipant(ctx, prefix, ttl, wait > 0)
	if err != nil {
		return Slot{}, err
	}
	tctx, cancel := s.op(ctx)
	resp, err := s.cli.Txn(tctx).Then(
		clientv3.OpPut(p.key, string(val), clientv3.WithLease(p.lease())),
		// the holders as limit counts them (the first keys in line), with their values
		clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(limit)),
		// this key (the newest) and the limit keys just ahead of it
		clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(limit+1), clientv3.WithKeysOnly()),
	).Commit()
	cancel()
	if err != nil {
		s.leave(p)
		return Slot{}, wrap(err)
	}
	p.rev = resp.Header.Revision
	me := Slot{Semaphore: name, Holder: holder, Token: p.rev, Limit: limit, TTL: ttl, TTLLeft: ttl}
	if inUse := otherLimit(resp.Responses[1].GetResponseRange().Kvs, limit); inUse != 0 {
		s.leave(p)
		return Slot{}, &Refusal{Kind: ErrLimitMismatch, Limit: inUse}
	}
	if int64(len(resp.Responses[2].GetResponseRange().Kvs))-1 < limit {
		if err = s.served(ctx, p, true); err == nil {
			return me, nil
		}
	} else if wait > 0 {
		turn := func(ctx context.Context) error { return s.awaitSlot(ctx, prefix, me.Token, limit) }
		if err = s.serveAfter(ctx, p, wait, true, turn); err == nil {
			return me, nil
		}
	}
	s.leave(p) // leave the line at once
	if ctx.Err() != nil || (err != nil && !errors.Is(err, context.DeadlineExceeded)) {
		return Slot{}, err
	}
	sem, err := s.GetSemaphore(ctx, name)
	if err != nil && !errors.Is(err, ErrSemaphoreNotFound) {
		return Slot{}, err
	}
	return Slot{}, &Refusal{Kind: ErrNoSlot, Holders: append([]Slot{}, sem.Holders...)} // [] when they left meanwhile
}

// awaitSlot waits until fewer than limit keys under prefix were created before
// rev, the waiter's own create revision. A release concerns one waiter: the
// first in line (limit keys ahead, the holders) waits for any of them to go;
// one further back waits for the waiter just ahead of it, whose key changes
// when it is served (it moves to its own lease) or leaves, and then reads its
// place again. So a release wakes the first waiter, and its serving the next,
// not the whole line. (Watching only the key limit places ahead is not enough:
// a holder between that one and the waiter may be the one to let go.)
func (s *Store) awaitSlot(ctx context.Context, prefix string, rev, limit int64) error {
	for {
		gctx, cancel := s.op(ctx)
		resp, err := s.cli.Get(gctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend),
			clientv3.WithLimit(limit+1), clientv3.WithMaxCreateRev(rev-1), clientv3.WithKeysOnly())
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return wrap(err)
		}
		if int64(len(resp.Kvs)) < limit {
			return nil
		}
		var next string // the waiter just ahead, when this one is not first in line
		if int64(len(resp.Kvs)) > limit {
			if next, err = s.stillWaiting(ctx, string(resp.Kvs[0].Key)); err != nil {
				return err
			}
		}
		if next != "" {
			err = s.awaitEvent(ctx, next, resp.Header.Revision+1, func(*clientv3.Event) bool { return true })
		} else { // first in line, or behind a key that does not move when served (another client's)
			err = s.awaitEvent(ctx, prefix, resp.Header.Revision+1, func(ev *clientv3.Event) bool { return ev.PrevKv == nil || ev.PrevKv.CreateRevision < rev },
				clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithPrevKV())
		}
		if err != nil {
			return err
		}
	}
}

// stillWaiting returns key when it is an etcdapi waiter's not served yet: bound
// to its short lease, not to the lease that names it (see served). A read of
// its own: etcd answers a keys-only read without leases.
func (s *Store) stillWaiting(ctx context.Context, key string) (string, error) {
	gctx, cancel := s.op(ctx)
	resp, err := s.cli.Get(gctx, key)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", wrap(err)
	}
	named, perr := strconv.ParseInt(key[strings.LastIndex(key, "/")+1:], 16, 64)
	if len(resp.Kvs) == 0 || perr != nil || resp.Kvs[0].Lease == 0 || resp.Kvs[0].Lease == named {
		return "", nil
	}
	return key, nil
}

// GetSemaphore returns a semaphore's holders, with the seconds left on each, and how many wait.
func (s *Store) GetSemaphore(ctx context.Context, name string) (Semaphore, error) {
	all, err := s.semaphores(ctx, semaphoreKeys(name))
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
	kvs, left, err := s.leasedKeys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	lines := map[string][]int{}
	var names []string
	for name, i := range arrivals(kvs, left, semaphorePrefix) {
		if lines[name] == nil {
			names = append(names, name)
		}
		lines[name] = append(lines[name], i)
	}
	sort.Strings(names)
	out := []Semaphore{}
	for _, name := range names {
		sem := Semaphore{Name: name, Limit: 1, Holders: []Slot{}}
		for _, i := range lines[name] {
			if l := slotOf(kvs[i]).Limit; l > 0 {
				sem.Limit = l // the first limit in line: a key without one does not decide
				break
			}
		}
		for _, i := range lines[name] {
			if int64(len(sem.Holders)) < sem.Limit {
				sem.Holders = append(sem.Holders, Slot{Holder: slotOf(kvs[i]).Holder, Token: kvs[i].CreateRevision, TTLLeft: left[i]})
			} else {
				sem.Queue++
			}
		}
		out = append(out, sem)
	}
	return out, nil
}

// slotKey is the key of the holder with token: ErrNotOccupant when token holds
// no place while others do, ErrSlotNotFound when nobody holds the semaphore.
func (s *Store) slotKey(ctx context.Context, name string, token int64) (*mvccpb.KeyValue, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	prefix := semaphoreKeys(name)
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithMinCreateRev(token), clientv3.WithMaxCreateRev(token)),
		opAhead(prefix, token),
		clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		return nil, wrap(err)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		if resp.Responses[2].GetResponseRange().Count == 0 {
			return nil, ErrSlotNotFound
		}
		return nil, ErrNotOccupant
	}
	if int64(len(resp.Responses[1].GetResponseRange().Kvs)) >= max(slotOf(kvs[0]).Limit, 1) {
		return nil, ErrNotOccupant // a waiter's key, not a holder's
	}
	return kvs[0], nil
}

// RenewSlot renews the lease of the holder with token and returns its TTL.
func (s *Store) RenewSlot(ctx context.Context, name string, token int64) (int64, error) {
	kv, err := s.slotKey(ctx, name, token)
	if err != nil {
		return 0, err
	}
	return s.renew(ctx, clientv3.LeaseID(kv.Lease), ErrSlotNotFound)
}

// ReleaseSlot frees the place of the holder with token: the next in line takes it at once.
func (s *Store) ReleaseSlot(ctx context.Context, name string, token int64) error {
	kv, err := s.slotKey(ctx, name, token)
	if err != nil {
		return err
	}
	// The key alone goes, never its lease: another client's session may hold
	// other keys on it, and etcdapi's own, empty now, ends by its TTL.
	return s.withdraw(ctx, string(kv.Key), token, ErrSlotNotFound)
}
