package store

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The domain's error kinds. The server maps each to a status code in one table.
var (
	ErrUserNotFound      = errors.New("user not found")
	ErrConfigNotFound    = errors.New("config key not found")
	ErrNoHistory         = errors.New("no history left for key")
	ErrInstanceNotFound  = errors.New("service instance not found or expired")
	ErrLockNotFound      = errors.New("lock not held")
	ErrEmailTaken        = errors.New("email already used")
	ErrStale             = errors.New("revision is stale")
	ErrLockHeld          = errors.New("lock held by another holder")
	ErrNotHolder         = errors.New("token does not hold the lock")
	ErrNoLeader          = errors.New("election has no leader")
	ErrNotLeader         = errors.New("token is not the leader's")
	ErrOtherLeader       = errors.New("another candidate leads")
	ErrSemaphoreNotFound = errors.New("nobody holds the semaphore")
	ErrSlotNotFound      = errors.New("semaphore place not held or expired")
	ErrNotOccupant       = errors.New("token holds no place in the semaphore")
	ErrNoSlot            = errors.New("no place left in the semaphore")
	ErrLimitMismatch     = errors.New("limit differs from the current holders'")
	ErrCompacted         = errors.New("revision compacted")
	ErrFutureRev         = errors.New("revision newer than the store's")
	ErrStaleGuard        = errors.New("the guard's participant no longer holds")
	ErrNotEmbedded       = errors.New("no embedded member") // only one can be cut off from its peers
	ErrUnavailable       = errors.New("etcd unavailable")
	ErrNoSpace           = errors.New("etcd space quota reached")
	// ErrUnreadable: another etcd client wrote a value under one of etcdapi's
	// prefixes that is not what etcdapi would have written there.
	ErrUnreadable = errors.New("value not written by etcdapi")
	// ErrPlaceLost: a waiter's key was deleted (etcdctl del), or its lease
	// revoked or lost, while it waited; it is never served, and may ask again.
	ErrPlaceLost = errors.New("the waiter's place in line was removed while it waited")
)

// Refusal is ErrLockHeld, ErrOtherLeader, ErrNoSlot or ErrLimitMismatch
// (Kind) with what the caller is told besides; the server answers Kind from
// its table, with these fields in the body.
type Refusal struct {
	Kind     error
	Holders  []Holder // who holds: the lock's holder, the leader, a full semaphore's holders
	Position int64    // where the caller stood in line (1: next); 0 for a lock's that did not wait
	Limit    int64    // the limit a semaphore's holders use
}

func (r *Refusal) Error() string { return r.Kind.Error() }
func (r *Refusal) Unwrap() error { return r.Kind }

// wrap turns what etcd answers into the domain's errors, keeping the cause.
func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("%w: %v", ErrNoSpace, err)
	case errors.Is(err, rpctypes.ErrCompacted):
		return fmt.Errorf("%w: %v", ErrCompacted, err)
	case errors.Is(err, rpctypes.ErrFutureRev):
		return fmt.Errorf("%w: %v", ErrFutureRev, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.Is(err, context.Canceled):
		return err
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) && (ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if c := status.Code(err); c == codes.Unavailable || c == codes.DeadlineExceeded {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}
