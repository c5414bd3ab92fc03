package store

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// userIndex is an in-memory copy of /users/ for search, kept the way Kubernetes'
// informers keep theirs: list at a revision, watch from the next one, list
// again when compaction breaks the watch. Folded names sit in one byte slice,
// so a search is a handful of SIMD scans, not one comparison per user.
type userIndex struct {
	mu      sync.RWMutex
	rev     int64          // the revision the index reflects
	byID    map[string]int // id -> slot
	slots   []slot         // in order of start
	names   []byte         // each slot's folded name, followed by a 0 byte
	dead    int            // slots no longer live
	changed chan struct{}  // closed and replaced whenever rev advances
}

type slot struct {
	id    string
	doc   []byte
	start int
	live  bool
}

func newUserIndex() *userIndex {
	return &userIndex{byID: map[string]int{}, changed: make(chan struct{})}
}

// put adds or replaces a user; the old slot dies and is reclaimed later.
func (x *userIndex) put(id string, doc []byte) {
	if i, ok := x.byID[id]; ok {
		x.slots[i].live = false
		x.dead++
	}
	var u struct {
		Nome string `json:"nome"`
	}
	json.Unmarshal(doc, &u)
	x.byID[id] = len(x.slots)
	x.slots = append(x.slots, slot{id: id, doc: doc, start: len(x.names), live: true})
	x.names = append(append(x.names, fold(u.Nome)...), 0)
	x.compactIfSparse()
}

func (x *userIndex) remove(id string) {
	if i, ok := x.byID[id]; ok {
		x.slots[i].live = false
		x.dead++
		delete(x.byID, id)
	}
	x.compactIfSparse()
}

func (x *userIndex) compactIfSparse() {
	if x.dead > 1024 && x.dead > len(x.byID) {
		x.compact()
	}
}

// compact drops dead slots once they outnumber the live ones.
func (x *userIndex) compact() {
	old, oldNames := x.slots, x.names
	x.slots, x.names, x.dead = make([]slot, 0, len(x.byID)), make([]byte, 0, len(oldNames)/2), 0
	for i, s := range old {
		if !s.live {
			continue
		}
		end := len(oldNames)
		if i+1 < len(old) {
			end = old[i+1].start
		}
		x.byID[s.id] = len(x.slots)
		s.start = len(x.names)
		x.slots = append(x.slots, s)
		x.names = append(x.names, oldNames[old[i].start:end]...)
	}
}

// advance records that the index reflects revision rev, waking waiters.
func (x *userIndex) advance(rev int64) {
	if rev > x.rev {
		x.rev = rev
		close(x.changed)
		x.changed = make(chan struct{})
	}
}

// search returns the documents of live users whose folded name contains q, by id.
func (x *userIndex) search(q string) [][]byte {
	if q == "" || bytes.IndexByte([]byte(q), 0) >= 0 {
		return [][]byte{}
	}
	needle := []byte(q)
	x.mu.RLock()
	var hits []slot
	for p := 0; p < len(x.names); {
		i := bytes.Index(x.names[p:], needle)
		if i < 0 {
			break
		}
		at := p + i
		n := sort.Search(len(x.slots), func(j int) bool { return x.slots[j].start > at }) - 1
		if x.slots[n].live {
			hits = append(hits, x.slots[n])
		}
		p = len(x.names)
		if n+1 < len(x.slots) {
			p = x.slots[n+1].start
		}
	}
	x.mu.RUnlock()
	sort.Slice(hits, func(i, j int) bool { return hits[i].id < hits[j].id })
	docs := make([][]byte, len(hits))
	for i, h := range hits {
		docs[i] = h.doc
	}
	return docs
}

var indexStream = metadata.Pairs("etcdapi-index", "users")

// keepIndex fills the index and follows /users/ until ctx ends.
func (s *Store) keepIndex(ctx context.Context) {
	// A watch stream of its own, so progress requests concern this watch alone.
	ctx = metadata.NewOutgoingContext(ctx, indexStream)
	for ctx.Err() == nil {
		rev, err := s.fillIndex(ctx)
		if err == nil {
			s.followIndex(ctx, rev)
		} else {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
	}
}

// fillIndex lists every user at one revision into a fresh index.
func (s *Store) fillIndex(ctx context.Context) (int64, error) {
	fresh := newUserIndex()
	var after string
	var rev int64
	for {
		p, err := s.ListUsers(ctx, rev, after, 1000)
		if err != nil {
			return 0, err
		}
		for _, doc := range p.Docs {
			var u struct {
				ID string `json:"_id"`
			}
			json.Unmarshal(doc, &u)
			fresh.put(u.ID, doc)
		}
		after, rev = p.LastID, p.Revision
		if !p.More {
			break
		}
	}
	x := s.index
	x.mu.Lock()
	x.byID, x.slots, x.names, x.dead = fresh.byID, fresh.slots, fresh.names, 0
	x.advance(rev)
	x.mu.Unlock()
	return rev, nil
}

// followIndex applies the watch's events; it returns when the watch breaks
// (compaction, or etcd gone), for fillIndex to start over.
func (s *Store) followIndex(ctx context.Context, rev int64) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x := s.index
	for resp := range s.watcher.Watch(ctx, usersPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if resp.Err() != nil || resp.CompactRevision > 0 {
			return
		}
		x.mu.Lock()
		for _, ev := range resp.Events {
			id := string(ev.Kv.Key[len(usersPrefix):])
			if ev.Type == clientv3.EventTypeDelete {
				x.remove(id)
			} else {
				x.put(id, ev.Kv.Value)
			}
			x.advance(ev.Kv.ModRevision)
		}
		if resp.IsProgressNotify() {
			x.advance(resp.Header.Revision) // caught up to here, with nothing new under /users/
		}
		x.mu.Unlock()
	}
}

// waitIndex waits until the index reflects revision rev (read-your-writes).
func (s *Store) waitIndex(ctx context.Context, rev int64) error {
	x := s.index
	// Exactly the index watch's metadata, so the request reaches that watch's stream.
	pctx := metadata.NewOutgoingContext(ctx, indexStream)
	for {
		x.mu.RLock()
		ok, changed := x.rev >= rev, x.changed
		x.mu.RUnlock()
		if ok {
			return nil
		}
		// The newest revision may belong to another prefix: only a progress
		// notification moves the index there.
		s.watcher.RequestProgress(pctx)
		select {
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return wrap(context.Cause(ctx))
		}
	}
}
