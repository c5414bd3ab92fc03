package store

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// Change is one event on a key: a put or a delete at a revision.
type Change struct {
	Key      string          `json:"chave,omitempty"`
	Value    json.RawMessage `json:"valor"`
	Revision int64           `json:"revisao"`
	Type     string          `json:"tipo"` // "put" or "delete"
}

func changeOf(kv *mvccpb.KeyValue, deleted bool) Change {
	c := Change{Key: string(kv.Key), Revision: kv.ModRevision, Type: "put", Value: kv.Value}
	switch {
	case deleted:
		c.Type, c.Value = "delete", json.RawMessage("null")
	case !json.Valid(c.Value):
		// written by someone else (etcdctl): show it as a string rather than break the stream
		c.Value, _ = json.Marshal(string(kv.Value))
	}
	return c
}

var historyStreams atomic.Int64

// history replays the key's events from the oldest revision compaction kept up
// to now. A watch from revision 1 streams them; a progress notification tells
// when the replay has caught up.
func (s *Store) history(ctx context.Context, key string) ([]Change, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// A watch stream of its own, so progress requests concern this watch alone.
	ctx = metadata.AppendToOutgoingContext(ctx, "etcdapi-history", strconv.FormatInt(historyStreams.Add(1), 10))
	now, err := s.cli.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return nil, wrap(err)
	}
	upto := now.Header.Revision
	from := int64(1)
	var out []Change
replay:
	for {
		wctx, wcancel := context.WithCancel(ctx)
		wch := s.cli.Watch(wctx, key, clientv3.WithRev(from))
		tick := time.NewTicker(5 * time.Millisecond)
		for {
			select {
			case resp, ok := <-wch:
				switch {
				case !ok:
					tick.Stop()
					wcancel()
					return nil, wrap(context.Cause(ctx))
				case resp.CompactRevision > 0:
					tick.Stop()
					wcancel()
					// Replay from the oldest revision kept, starting with the value the key had then.
					from, out = resp.CompactRevision, nil
					kept, err := s.cli.Get(ctx, key, clientv3.WithRev(from))
					if err != nil {
						return nil, wrap(err)
					}
					if len(kept.Kvs) > 0 && kept.Kvs[0].ModRevision < from {
						out = append(out, changeOf(kept.Kvs[0], false))
					}
					continue replay
				case resp.Err() != nil:
					tick.Stop()
					wcancel()
					return nil, wrap(resp.Err())
				}
				for _, ev := range resp.Events {
					if ev.Kv.ModRevision <= upto {
						out = append(out, changeOf(ev.Kv, ev.Type == clientv3.EventTypeDelete))
					}
				}
				if resp.Header.Revision >= upto && (resp.IsProgressNotify() || len(resp.Events) > 0 && resp.Events[len(resp.Events)-1].Kv.ModRevision >= upto) {
					tick.Stop()
					wcancel()
					break replay
				}
			case <-tick.C:
				// Ignored by the server while the watch is still replaying: ask again.
				s.cli.RequestProgress(wctx)
			}
		}
	}
	for i := range out {
		out[i].Key = ""
	}
	return out, nil
}
