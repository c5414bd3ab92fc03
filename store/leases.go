package store

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
)

// leasedKeys reads the keys under prefix with the seconds left on each one's lease.
func (s *Store) leasedKeys(ctx context.Context, prefix string) ([]*mvccpb.KeyValue, []int64, error) {
	gctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(gctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, nil, wrap(err)
	}
	left, err := s.ttlsLeft(ctx, leases(resp.Kvs))
	return resp.Kvs, left, err
}

// ttlsLeft asks etcd for the seconds left on each lease, a few at a time:
// listing N instances costs about N/ttlRequests round trips of wall time, and
// never N goroutines. Expired leases get -1; a key without a lease (written by
// another client) gets 0.
func (s *Store) ttlsLeft(ctx context.Context, leases []clientv3.LeaseID) ([]int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	left := make([]int64, len(leases))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(ttlRequests)
	for i, id := range leases {
		if id == clientv3.NoLease {
			continue
		}
		g.Go(func() error {
			resp, err := s.cli.TimeToLive(ctx, id)
			switch {
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				left[i] = -1
			case err != nil:
				return wrap(err)
			default:
				left[i] = resp.TTL
			}
			return nil
		})
	}
	return left, g.Wait()
}

// ttlRequests bounds the lease lookups one listing has in flight at once.
const ttlRequests = 16

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

// grant creates a lease of ttl seconds, whatever becomes of ctx meanwhile: a
// lease etcd granted while its request was being cancelled would be known to
// nobody, left to its TTL (up to an hour). The caller revokes it when it ends.
func (s *Store) grant(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	ctx, cancel := s.op(context.WithoutCancel(ctx))
	defer cancel()
	resp, err := s.cli.Grant(ctx, ttl)
	if err != nil {
		return 0, wrap(err)
	}
	return resp.ID, nil
}

// leases is the lease of each key (0 for a key without one).
func leases(kvs []*mvccpb.KeyValue) []clientv3.LeaseID {
	ids := make([]clientv3.LeaseID, len(kvs))
	for i, kv := range kvs {
		ids[i] = clientv3.LeaseID(kv.Lease)
	}
	return ids
}
