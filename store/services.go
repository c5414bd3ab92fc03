package store

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const servicesPrefix = "/services/"

// Instance is one registered instance of a service, bound to a lease of its TTL.
type Instance struct {
	ID           string          `json:"id"`
	Endpoint     string          `json:"endpoint"`
	Status       string          `json:"status"`
	RegisteredAt string          `json:"registrado_em"`
	TTL          int64           `json:"ttl"`
	Metadata     json.RawMessage `json:"metadados,omitempty"`
}

// LiveInstance is an instance with the seconds left before it expires.
type LiveInstance struct {
	Instance
	TTLLeft int64 `json:"ttl_restante"`
}

// InstanceKey is the etcd key of a service instance.
func InstanceKey(service, id string) string { return servicesPrefix + service + "/" + id }

// RegisterInstance stores the instance under a new lease of inst.TTL seconds;
// without heartbeats it disappears by itself.
func (s *Store) RegisterInstance(ctx context.Context, service string, inst Instance) error {
	lease, err := s.grant(ctx, inst.TTL)
	if err != nil {
		return err
	}
	doc, _ := json.Marshal(inst)
	pctx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.cli.Put(pctx, InstanceKey(service, inst.ID), string(doc), clientv3.WithLease(lease)); err != nil {
		s.revoke(lease)
		return wrap(err)
	}
	return nil
}

// Instances lists a service's live instances.
func (s *Store) Instances(ctx context.Context, service string) ([]LiveInstance, error) {
	kvs, left, err := s.leasedKeys(ctx, servicesPrefix+service+"/")
	if err != nil {
		return nil, err
	}
	live := []LiveInstance{}
	var skipped []string
	for i, kv := range kvs {
		var inst LiveInstance
		if left[i] < 0 {
			continue // expired a moment ago
		}
		if !decodeObject(kv.Value, &inst.Instance) {
			skipped = append(skipped, string(kv.Key))
			continue
		}
		inst.TTLLeft = left[i]
		live = append(live, inst)
	}
	s.skipped(skipped)
	return live, nil
}

// Heartbeat renews an instance's lease once and returns the seconds left.
func (s *Store) Heartbeat(ctx context.Context, service, id string) (int64, error) {
	lease, err := s.leaseOf(ctx, InstanceKey(service, id), ErrInstanceNotFound)
	if err != nil {
		return 0, err
	}
	return s.renew(ctx, lease, ErrInstanceNotFound)
}

// Deregister deletes an instance's key, then revokes its lease if it has one
// (an instance another client wrote may have none).
func (s *Store) Deregister(ctx context.Context, service, id string) error {
	dctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Delete(dctx, InstanceKey(service, id), clientv3.WithPrevKV())
	if err != nil {
		return wrap(err)
	}
	if len(resp.PrevKvs) == 0 {
		return ErrInstanceNotFound
	}
	if lease := resp.PrevKvs[0].Lease; lease != 0 {
		return s.revoke(clientv3.LeaseID(lease))
	}
	return nil
}

// ServiceCount is a service name and how many live instances it has.
type ServiceCount struct {
	Name      string `json:"nome"`
	Instances int    `json:"instancias"`
}

// Services lists every service with its number of instances.
func (s *Store) Services(ctx context.Context) ([]ServiceCount, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, servicesPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, wrap(err)
	}
	counts := map[string]int{}
	var skipped []string
	for _, kv := range resp.Kvs {
		var inst Instance
		if !decodeObject(kv.Value, &inst) {
			skipped = append(skipped, string(kv.Key))
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), servicesPrefix), "/")
		counts[name]++
	}
	s.skipped(skipped)
	out := []ServiceCount{}
	for name, n := range counts {
		out = append(out, ServiceCount{Name: name, Instances: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// leaseOf reads the lease a key is bound to; notFound when the key is gone.
func (s *Store) leaseOf(ctx context.Context, key string, notFound error) (clientv3.LeaseID, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return 0, wrap(err)
	}
	if len(resp.Kvs) == 0 {
		return 0, notFound
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease), nil
}
