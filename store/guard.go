package store

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Guard is a write's fencing condition (the Etcdapi-Guarda header): the write
// applies only if, in the same etcd transaction, that participant still holds.
// A token protects only a resource that checks it; this is the check, done
// for the client (concurrency.Mutex.IsOwner as a compare).
type Guard struct {
	Kind     string // "lock", "eleicao" or "semaforo"; "" for no guard
	Resource string
	Token    int64
}

// StaleGuardError is a guarded write refused: the guard's participant no
// longer holds, and nothing was written.
type StaleGuardError struct {
	Guard
	Current int64 // the token that holds now; 0 when nobody does
}

func (e *StaleGuardError) Unwrap() error { return ErrStaleGuard }

func (e *StaleGuardError) Error() string {
	return fmt.Sprintf("%s %s: token %d no longer holds (now %d)", e.Kind, e.Resource, e.Token, e.Current)
}

// guardCmps returns the comparisons that are true only while g's participant
// still holds: the write's transaction carries them, so there is no window
// between the check and the write. A lock's holder key is known, so its
// compare costs no read; an election's or a semaphore's participant is found
// by a read first (*StaleGuardError when it already does not hold).
func (s *Store) guardCmps(ctx context.Context, g Guard) ([]clientv3.Cmp, error) {
	switch g.Kind {
	case "":
		return nil, nil
	case "lock":
		return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(locksPrefix+g.Resource), "=", g.Token)}, nil
	}
	kv, err := s.guardHolder(ctx, g)
	if err != nil {
		return nil, err
	}
	// A leader or a semaphore's holder holds while its key exists: keys ahead
	// of it can only leave (a new key is always newer).
	return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(string(kv.Key)), "=", g.Token)}, nil
}

// guardHolder is the key of g's participant if it holds (see held), or
// *StaleGuardError with the token that holds now: the lock's holder, the
// leader, a semaphore's latest grant; 0 when nobody holds.
func (s *Store) guardHolder(ctx context.Context, g Guard) (*mvccpb.KeyValue, error) {
	holders, err := s.holders(ctx, lineOf(g.Kind, g.Resource))
	if err != nil {
		return nil, err
	}
	if kv := withToken(holders, g.Token); kv != nil {
		return kv, nil
	}
	stale := &StaleGuardError{Guard: g}
	if len(holders) > 0 {
		stale.Current = holders[len(holders)-1].CreateRevision
	}
	return nil, stale
}

// guardFailed tells, after a transaction carrying g's comparisons failed,
// whether g is why: *StaleGuardError then, nil when g still holds.
func (s *Store) guardFailed(ctx context.Context, g Guard) error {
	if g.Kind == "" {
		return nil
	}
	_, err := s.guardHolder(ctx, g)
	return err
}
