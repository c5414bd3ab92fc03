package store

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
// to now, oldest first.
func (s *Store) history(ctx context.Context, key string) ([]Change, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// A watch stream of its own, so progress requests concern this watch alone.
	ctx = metadata.AppendToOutgoingContext(ctx, "etcdapi-history", strconv.FormatInt(historyStreams.Add(1), 10))
	now, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, wrap(err)
	}
	// The replay is done at the key's last put when it exists; when it was
	// deleted, only a progress notification can say so.
	var last int64
	if len(now.Kvs) > 0 {
		last = now.Kvs[0].ModRevision
	}
	var out []Change
	from := int64(1)
	for {
		events, compacted, err := s.replay(ctx, key, from, now.Header.Revision, last)
		if err != nil {
			return nil, err
		}
		if compacted == 0 {
			out = append(out, events...)
			break
		}
		// Start again at the oldest revision kept, with the value the key had then.
		from, out = compacted, nil
		kept, err := s.cli.Get(ctx, key, clientv3.WithRev(from))
		if err != nil {
			return nil, wrap(err)
		}
		if len(kept.Kvs) > 0 && kept.Kvs[0].ModRevision < from {
			out = append(out, changeOf(kept.Kvs[0], false))
			if last == kept.Kvs[0].ModRevision {
				break
			}
		}
	}
	for i := range out {
		out[i].Key = ""
	}
	return out, nil
}

// replay watches key from revision from and returns its events up to revision
// upto, or the compaction revision when from is compacted away.
func (s *Store) replay(ctx context.Context, key string, from, upto, last int64) (events []Change, compacted int64, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := s.watcher.Watch(ctx, key, clientv3.WithRev(from))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case resp, ok := <-wch:
			switch {
			case !ok:
				return nil, 0, wrap(context.Cause(ctx))
			case resp.CompactRevision > 0:
				return nil, resp.CompactRevision, nil
			case resp.Err() != nil:
				return nil, 0, wrap(resp.Err())
			}
			for _, ev := range resp.Events {
				if ev.Kv.ModRevision <= upto {
					events = append(events, changeOf(ev.Kv, ev.Type == clientv3.EventTypeDelete))
				}
				if last > 0 && ev.Kv.ModRevision >= last {
					return events, 0, nil
				}
			}
			if last == 0 && resp.IsProgressNotify() && resp.Header.Revision >= upto {
				return events, 0, nil
			}
		case <-tick.C:
			// Ignored by the server while the watch is still replaying: ask again.
			if last == 0 {
				s.watcher.RequestProgress(ctx)
			}
		}
	}
}

// Watched are the prefixes a client may watch.
var Watched = []string{usersPrefix, configPrefix, servicesPrefix, locksPrefix, locksQueuePrefix, electionPrefix, semaphorePrefix}

// Watch streams the changes below prefix that come after revision after (0:
// from now on), in revision order, one batch per etcd revision group. The
// channel closes when ctx ends, the watch breaks, or the reader falls more than
// maxBehind bytes behind: a reader that stops reading costs a bounded amount of
// memory (etcd's client would otherwise buffer every event for it). Errors:
// ErrCompacted when after is older than etcd's compaction, ErrFutureRev
// when it is newer than etcd's current revision.
func (s *Store) Watch(ctx context.Context, prefix string, after int64, maxBehind int) (<-chan []Change, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if after == math.MaxInt64 {
		return nil, ErrFutureRev // after+1 would overflow into "from now on"
	}
	if after > 0 {
		// Find out now, while an HTTP status can still say so, whether etcd kept that far back.
		gctx, cancel := s.op(ctx)
		defer cancel()
		_, err := s.cli.Get(gctx, prefix, clientv3.WithRev(after+1), clientv3.WithCountOnly())
		if errors.Is(err, rpctypes.ErrFutureRev) {
			// Right after the current revision is where a client that saw everything resumes.
			now, err := s.cli.Get(gctx, prefix, clientv3.WithCountOnly())
			if err != nil {
				return nil, wrap(err)
			}
			if after > now.Header.Revision {
				return nil, ErrFutureRev
			}
		} else if err != nil {
			return nil, wrap(err)
		}
		opts = append(opts, clientv3.WithRev(after+1))
	}
	ctx, cancel := context.WithCancel(ctx)
	wch := s.watcher.Watch(clientv3.WithRequireLeader(ctx), prefix, opts...)
	out := make(chan []Change, 256)
	go func() {
		defer cancel()
		defer close(out)
		var sizes []int // bytes of each batch sent, the last len(out) still unread
		for resp := range wch {
			if resp.Err() != nil || resp.CompactRevision > 0 {
				return
			}
			if len(resp.Events) == 0 {
				continue
			}
			batch := make([]Change, len(resp.Events))
			size := 0
			for i, ev := range resp.Events {
				batch[i] = changeOf(ev.Kv, ev.Type == clientv3.EventTypeDelete)
				size += len(batch[i].Key) + len(batch[i].Value)
			}
			sizes = sizes[len(sizes)-len(out):]
			behind := 0
			for _, n := range sizes {
				behind += n
			}
			if len(out) == cap(out) || (len(sizes) > 0 && behind+size > maxBehind) {
				s.log.Info("event stream closed: its reader fell behind", "prefix", prefix, "behind_bytes", behind)
				return
			}
			sizes = append(sizes, size)
			out <- batch
		}
	}()
	return out, nil
}

// AwaitChange waits until key is written or deleted after revision rev (its
// mod revision when read), and tells whether it was (false when ctx ended
// first). One watch, no polling; it ends with ctx.
func (s *Store) AwaitChange(ctx context.Context, key string, rev int64) (bool, error) {
	from := rev + 1
	for {
		changed, compacted, err := s.watchOnce(ctx, key, from)
		if !compacted {
			return changed, err
		}
		// The history since rev is compacted away: if the key is still at
		// rev, nothing changed; wait on from now (a client loop must not spin).
		gctx, cancel := s.op(ctx)
		now, err := s.cli.Get(gctx, key)
		cancel()
		if err != nil {
			return false, wrap(err)
		}
		if len(now.Kvs) == 0 || now.Kvs[0].ModRevision != rev {
			return true, nil
		}
		from = now.Header.Revision + 1
	}
}

// watchOnce watches key from revision from until its first event, a
// compaction of that revision, or the end of ctx.
func (s *Store) watchOnce(ctx context.Context, key string, from int64) (changed, compacted bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range s.watcher.Watch(clientv3.WithRequireLeader(ctx), key, clientv3.WithRev(from)) {
		switch {
		case resp.CompactRevision > 0:
			return false, true, nil
		case resp.Err() != nil:
			return false, false, wrap(resp.Err())
		case len(resp.Events) > 0:
			return true, false, nil
		}
	}
	if ctx.Err() != nil {
		return false, false, nil
	}
	return false, false, ErrUnavailable
}
