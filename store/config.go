package store

import (
	"context"
	"encoding/json"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const configPrefix = "/config/app/"

// ConfigKey is the etcd key of a configuration key.
func ConfigKey(key string) string { return configPrefix + key }

// GetConfig returns a configuration value as the JSON it was stored as, and
// the revision that last wrote it.
func (s *Store) GetConfig(ctx context.Context, key string) (json.RawMessage, int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, configPrefix+key)
	if err != nil {
		return nil, 0, wrap(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, ErrConfigNotFound
	}
	return configValue(resp.Kvs[0].Value), resp.Kvs[0].ModRevision, nil
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

// PutConfig stores a JSON value and returns the revision that wrote it. With
// ifMatch > 0 the key must still be at that revision (ErrStale otherwise), and
// g's participant must still hold (*StaleGuardError otherwise).
func (s *Store) PutConfig(ctx context.Context, key string, value json.RawMessage, ifMatch int64, g Guard) (int64, error) {
	return s.writeConfig(ctx, key, ifMatch, g, clientv3.OpPut(configPrefix+key, string(value)))
}

// writeConfig applies op to key, if its revision is still ifMatch (when > 0)
// and g still holds.
func (s *Store) writeConfig(ctx context.Context, key string, ifMatch int64, g Guard, op clientv3.Op) (int64, error) {
	cmps, err := s.guardCmps(ctx, g)
	if err != nil {
		return 0, err
	}
	if ifMatch > 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(configPrefix+key), "=", ifMatch))
	}
	tctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(tctx).If(cmps...).Then(op).Commit()
	switch {
	case err != nil:
		return 0, wrap(err)
	case !resp.Succeeded:
		if err := s.guardFailed(ctx, g); err != nil {
			return 0, err
		}
		return 0, ErrStale
	case op.IsDelete() && resp.Responses[0].GetResponseDeleteRange().Deleted == 0:
		return 0, ErrConfigNotFound
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

// DeleteConfig removes a key; ErrConfigNotFound when there was none. ifMatch
// and g as for PutConfig.
func (s *Store) DeleteConfig(ctx context.Context, key string, ifMatch int64, g Guard) (int64, error) {
	return s.writeConfig(ctx, key, ifMatch, g, clientv3.OpDelete(configPrefix+key))
}

// ConfigHistory returns the key's changes, oldest first, as far back as compaction allows.
func (s *Store) ConfigHistory(ctx context.Context, key string) ([]Change, error) {
	h, err := s.history(ctx, configPrefix+key)
	if err == nil && len(h) == 0 {
		err = ErrNoHistory
	}
	return h, err
}
