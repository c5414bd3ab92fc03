package store

import (
	"context"
	"encoding/json"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const configPrefix = "/config/app/"

// GetConfig returns a configuration value as the JSON it was stored as.
func (s *Store) GetConfig(ctx context.Context, key string) (json.RawMessage, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, configPrefix+key)
	if err != nil {
		return nil, wrap(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrConfigNotFound
	}
	return configValue(resp.Kvs[0].Value), nil
}

// configValue is a stored value as JSON: one another etcd client wrote that
// is not JSON comes back as a JSON string.
func configValue(v []byte) json.RawMessage {
	if json.Valid(v) {
		return v
	}
	s, _ := json.Marshal(string(v))
	return s
}

// PutConfig stores a JSON value and returns the revision that wrote it.
func (s *Store) PutConfig(ctx context.Context, key string, value json.RawMessage) (int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Put(ctx, configPrefix+key, string(value))
	if err != nil {
		return 0, wrap(err)
	}
	return resp.Header.Revision, nil
}

// ListConfig returns every configuration key and value.
func (s *Store) ListConfig(ctx context.Context) (map[string]json.RawMessage, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, configPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, wrap(err)
	}
	all := make(map[string]json.RawMessage, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		all[strings.TrimPrefix(string(kv.Key), configPrefix)] = configValue(kv.Value)
	}
	return all, nil
}

// DeleteConfig removes a key; ErrConfigNotFound when there was none.
func (s *Store) DeleteConfig(ctx context.Context, key string) (int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Delete(ctx, configPrefix+key)
	if err != nil {
		return 0, wrap(err)
	}
	if resp.Deleted == 0 {
		return 0, ErrConfigNotFound
	}
	return resp.Header.Revision, nil
}

// ConfigHistory returns the key's changes, oldest first, as far back as compaction allows.
func (s *Store) ConfigHistory(ctx context.Context, key string) ([]Change, error) {
	h, err := s.history(ctx, configPrefix+key)
	if err == nil && len(h) == 0 {
		err = ErrNoHistory
	}
	return h, err
}
