package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cond is one condition of a transaction on a configuration key: exactly one
// of Revision (its mod revision; 0: absent), Exists, or Value (its JSON).
type Cond struct {
	Key      string
	Revision *int64
	Exists   *bool
	Value    json.RawMessage // compact
}

// TxnOp is one operation of a transaction: "definir" (with Value), "apagar" or "ler".
type TxnOp struct {
	Kind  string
	Key   string
	Value json.RawMessage
}

// TxnResult is a transaction applied: every result at one revision.
type TxnResult struct {
	Revision int64      `json:"revisao"`
	Results  []OpResult `json:"resultados"`
}

// OpResult is one operation's result: a write's revision, or what a read found.
type OpResult struct {
	Key      string          `json:"chave"`
	Value    json.RawMessage `json:"valor,omitempty"`
	Revision int64           `json:"revisao,omitempty"`
	Exists   *bool           `json:"existe,omitempty"`
}

// CondFailure is a condition that did not hold, as read at the revision that decided.
type CondFailure struct {
	Index    int             `json:"indice"`
	Key      string          `json:"chave"`
	Revision int64           `json:"revisao_atual"`
	Value    json.RawMessage `json:"valor_atual"`
}

// TxnFailedError is a transaction whose conditions did not all hold: nothing was written.
type TxnFailedError struct {
	Revision int64
	Failures []CondFailure
}

func (e *TxnFailedError) Error() string {
	return fmt.Sprintf("%d conditions failed at revision %d", len(e.Failures), e.Revision)
}

// Transaction applies ops to configuration keys at once, all or none, if
// every condition holds and g still holds: one etcd transaction (Consul's
// /v1/txn). *TxnFailedError names the conditions that failed.
func (s *Store) Transaction(ctx context.Context, conds []Cond, ops []TxnOp, g Guard) (TxnResult, error) {
	cmps, err := s.guardCmps(ctx, g)
	if err != nil {
		return TxnResult{}, err
	}
	var orElse []clientv3.Op
	for _, c := range conds {
		key := configPrefix + c.Key
		switch {
		case c.Revision != nil:
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", *c.Revision))
		case c.Exists != nil && *c.Exists:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), ">", 0))
		case c.Exists != nil:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		default:
			cmps = append(cmps, clientv3.Compare(clientv3.Value(key), "=", string(c.Value)))
		}
		orElse = append(orElse, clientv3.OpGet(key))
	}
	then := make([]clientv3.Op, len(ops))
	for i, op := range ops {
		key := configPrefix + op.Key
		switch op.Kind {
		case "definir":
			then[i] = clientv3.OpPut(key, string(op.Value))
		case "apagar":
			then[i] = clientv3.OpDelete(key)
		default:
			then[i] = clientv3.OpGet(key)
		}
	}
	tctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(tctx).If(cmps...).Then(then...).Else(orElse...).Commit()
	if err != nil {
		return TxnResult{}, wrap(err)
	}
	rev := resp.Header.Revision
	if !resp.Succeeded {
		failed := &TxnFailedError{Revision: rev}
		for i, c := range conds {
			kvs := resp.Responses[i].GetResponseRange().Kvs
			if !c.holds(kvs) {
				f := CondFailure{Index: i, Key: c.Key, Value: json.RawMessage("null")}
				if len(kvs) > 0 {
					f.Revision, f.Value = kvs[0].ModRevision, configValue(kvs[0].Value)
				}
				failed.Failures = append(failed.Failures, f)
			}
		}
		if len(failed.Failures) == 0 {
			if err := s.guardFailed(ctx, g); err != nil {
				return TxnResult{}, err
			}
		}
		return TxnResult{}, failed
	}
	out := TxnResult{Revision: rev, Results: make([]OpResult, len(ops))}
	for i, op := range ops {
		r := OpResult{Key: op.Key, Revision: rev}
		if op.Kind == "ler" {
			if kvs := resp.Responses[i].GetResponseRange().Kvs; len(kvs) > 0 {
				r.Value, r.Revision = configValue(kvs[0].Value), kvs[0].ModRevision
			} else {
				r.Revision, r.Exists = 0, new(bool)
			}
		}
		out.Results[i] = r
	}
	return out, nil
}

// holds tells whether c held for the key as read (kvs: none when absent).
func (c Cond) holds(kvs []*mvccpb.KeyValue) bool {
	switch {
	case c.Revision != nil:
		return (len(kvs) == 0 && *c.Revision == 0) || (len(kvs) > 0 && kvs[0].ModRevision == *c.Revision)
	case c.Exists != nil:
		return *c.Exists == (len(kvs) > 0)
	}
	return len(kvs) > 0 && bytes.Equal(kvs[0].Value, c.Value)
}
