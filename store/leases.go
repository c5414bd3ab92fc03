package store

import (
	"context"
	"errors"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// leasedKeys reads the keys under prefix with the seconds left on each one's lease.
func (s *Store) leasedKeys(ctx context.Context, prefix string) ([]*mvccpb.KeyValue, []int64, error) {
	gctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(gctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, nil, wrap(err)
	}
	leases := make([]clientv3.LeaseID, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		leases[i] = clientv3.LeaseID(kv.Lease)
	}
	left, err := s.ttlsLeft(ctx, leases)
	return resp.Kvs, left, err
}

// ttlsLeft asks etcd for the seconds left on each lease, all at once: listing
// N instances costs one round trip of wall time, not N. Expired leases get -1.
func (s *Store) ttlsLeft(ctx context.Context, leases []clientv3.LeaseID) ([]int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	left := make([]int64, len(leases))
	errs := make([]error, len(leases))
	var wg sync.WaitGroup
	for i, id := range leases {
		wg.Go(func() {
			resp, err := s.cli.TimeToLive(ctx, id)
			switch {
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				left[i] = -1
			case err != nil:
				errs[i] = wrap(err)
			default:
				left[i] = resp.TTL
			}
		})
	}
	wg.Wait()
	return left, errors.Join(errs...)
}

// renew renews a lease once and returns its TTL; notFound when it has expired.
func (s *Store) renew(ctx context.Context, id clientv3.LeaseID, notFound error) (int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.KeepAliveOnce(ctx, id)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return 0, notFound
	}
	if err != nil {
		return 0, wrap(err)
	}
	return resp.TTL, nil
}

// revoke ends a lease and deletes its keys; it outlives the request that asked
// for it, since a lease left behind would hold its keys for a whole TTL.
func (s *Store) revoke(id clientv3.LeaseID) error {
	ctx, cancel := s.op(context.Background())
	defer cancel()
	_, err := s.cli.Revoke(ctx, id)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return nil
	}
	return wrap(err)
}

// grant creates a lease of ttl seconds.
func (s *Store) grant(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Grant(ctx, ttl)
	if err != nil {
		return 0, wrap(err)
	}
	return resp.ID, nil
}
