package store

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
	"k8s.io/utils/third_party/forked/golang/btree"
)

// userIndex holds what search needs of every user under /users/, its id and
// folded name, kept the way Kubernetes' informers keep theirs: list at a
// revision, watch from the next one, list again when compaction breaks the
// watch. The documents stay in etcd: a search fetches the ones it answers.
// Folded names sit in one byte slice; a trigram index narrows a search to the
// few names that can match; a B-tree of ids pages a broad search in id order.
type userIndex struct {
	mu      sync.RWMutex
	rev     int64               // the revision the index reflects
	ids     *btree.BTree[ref]   // live users, by id
	slots   []slot              // in order of start
	names   []byte              // each slot's folded name, followed by a 0 byte
	grams   map[uint32][]uint32 // trigram of a folded name -> slots, ascending
	dead    int                 // slots no longer live
	changed chan struct{}       // closed and replaced whenever rev advances
}

type slot struct {
	id    string
	start int
	live  bool
}

// ref is a live user's slot, ordered by id.
type ref struct {
	id string
	n  uint32
}

func newUserIndex() *userIndex {
	return &userIndex{ids: newIDTree(), grams: map[uint32][]uint32{}, changed: make(chan struct{})}
}

func newIDTree() *btree.BTree[ref] {
	return btree.New(32, func(a, b ref) bool { return a.id < b.id })
}

// put adds or replaces a user; the old slot dies and is reclaimed later. A
// value that is not a user with a string nome (written by another client) is
// left out of search.
func (x *userIndex) put(id string, doc []byte) {
	name, ok := userName(doc)
	if !ok {
		x.remove(id)
		return
	}
	if old, ok := x.ids.Get(ref{id: id}); ok {
		x.slots[old.n].live = false
		x.dead++
	}
	x.add(id, []byte(name))
	x.compactIfSparse()
}

// userName is a stored user's folded nome; false for a value that is not a
// JSON object with a string nome (another client's). goccy/go-json (Gin's
// go_json decoder) reads it faster than encoding/json, a quarter less time
// for an index fill, but takes some invalid JSON: encoding/json's validation
// comes first, or a search could answer another client's broken value.
// FuzzUserNameAsEncodingJSON holds it to encoding/json's answers.
func userName(doc []byte) (string, bool) {
	var u struct {
		Nome string `json:"nome"`
	}
	if !isObject(doc) || gojson.Unmarshal(doc, &u) != nil {
		return "", false
	}
	return fold(u.Nome), true
}

// add appends a live slot with its folded name and indexes the name's trigrams.
func (x *userIndex) add(id string, name []byte) {
	n := uint32(len(x.slots))
	x.ids.ReplaceOrInsert(ref{id: id, n: n})
	x.slots = append(x.slots, slot{id: id, start: len(x.names), live: true})
	x.names = append(append(x.names, name...), 0)
	for i := 0; i+3 <= len(name); i++ {
		g := trigram(name[i:])
		if l := x.grams[g]; len(l) == 0 || l[len(l)-1] != n {
			x.grams[g] = append(l, n)
		}
	}
}

func trigram(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// name is slot n's folded name.
func (x *userIndex) name(n int) []byte {
	end := len(x.names)
	if n+1 < len(x.slots) {
		end = x.slots[n+1].start
	}
	return x.names[x.slots[n].start : end-1]
}

func (x *userIndex) remove(id string) {
	if old, ok := x.ids.Delete(ref{id: id}); ok {
		x.slots[old.n].live = false
		x.dead++
	}
	x.compactIfSparse()
}

func (x *userIndex) compactIfSparse() {
	if x.dead > 1024 && x.dead > x.ids.Len() {
		x.compact()
	}
}

// compact drops dead slots once they outnumber the live ones.
func (x *userIndex) compact() {
	slots, names := x.slots, x.names
	name := func(n int) []byte {
		end := len(names)
		if n+1 < len(slots) {
			end = slots[n+1].start
		}
		return names[slots[n].start : end-1]
	}
	x.slots, x.names, x.dead = make([]slot, 0, x.ids.Len()), make([]byte, 0, len(names)/2), 0
	x.ids, x.grams = newIDTree(), map[uint32][]uint32{}
	for n, s := range slots {
		if s.live {
			x.add(s.id, name(n))
		}
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

// broadWalk: a needle whose rarest trigram is held by more names than this,
// asked for a page, is matched walking the ids in order instead, and stops
// once the page is full: a broad search pages in constant time.
const broadWalk = 4096

// hits are a search's answer from the index.
type hits struct {
	ids   []string // in id order
	rev   int64    // the revision the index reflects
	dense bool     // most users between the first id and the last are among ids
}

// search returns the ids after `after` of live users whose folded name
// contains q, at most limit of them (0: all).
func (x *userIndex) search(q, after string, limit int) hits {
	needle := []byte(q)
	x.mu.RLock()
	defer x.mu.RUnlock()
	if len(needle) == 0 || bytes.IndexByte(needle, 0) >= 0 {
		return hits{rev: x.rev}
	}
	var lists [][]uint32 // the slots holding each of the needle's trigrams, rarest first
	if len(needle) >= 3 {
		for i := 0; i+3 <= len(needle); i++ {
			l, ok := x.grams[trigram(needle[i:])]
			if !ok {
				return hits{rev: x.rev} // no name holds this trigram
			}
			lists = append(lists, l)
		}
		slices.SortFunc(lists, func(a, b []uint32) int { return len(a) - len(b) })
	}
	if limit > 0 && (len(needle) < 3 || len(lists[0]) > broadWalk) {
		var ids []string
		walked := 0
		x.ids.AscendGreaterOrEqual(ref{id: after + "\x00"}, func(r ref) bool {
			walked++
			if bytes.Contains(x.name(int(r.n)), needle) {
				ids = append(ids, r.id)
			}
			return len(ids) < limit
		})
		return hits{ids: ids, rev: x.rev, dense: walked <= 2*len(ids)}
	}
	var matched []int
	if len(needle) < 3 {
		matched = x.scan(needle)
	} else {
		for _, n := range candidates(lists) {
			if x.slots[n].live && bytes.Contains(x.name(int(n)), needle) {
				matched = append(matched, int(n))
			}
		}
	}
	ids := make([]string, 0, len(matched))
	for _, n := range matched {
		if id := x.slots[n].id; id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	dense := 2*len(ids) >= x.ids.Len() // a page of these is dense too, on average
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	return hits{ids: ids, rev: x.rev, dense: dense}
}

// candidates intersects the trigram lists, rarest first, while that pays:
// checking a name costs about ten steps of a merge. ("seed 01234" among
// 100,000 "seed NNNNN": about 300 names hold its rarest trigram, one holds all.)
func candidates(lists [][]uint32) []uint32 {
	c := lists[0]
	for _, l := range lists[1:] {
		if len(c) <= 8 || len(l) > 8*len(c) {
			break
		}
		c = intersect(c, l)
	}
	return c
}

// intersect returns the values in both ascending lists.
func intersect(a, b []uint32) []uint32 {
	var out []uint32
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// scan finds a needle too short for trigrams by scanning every name.
func (x *userIndex) scan(needle []byte) []int {
	var hits []int
	for p := 0; p < len(x.names); {
		i := bytes.Index(x.names[p:], needle)
		if i < 0 {
			break
		}
		at := p + i
		n := sort.Search(len(x.slots), func(j int) bool { return x.slots[j].start > at }) - 1
		if x.slots[n].live {
			hits = append(hits, n)
		}
		p = len(x.names)
		if n+1 < len(x.slots) {
			p = x.slots[n+1].start
		}
	}
	return hits
}

var indexStream = metadata.Pairs("etcdapi-index", "users")

// keepIndex fills the index and follows /users/ until ctx ends.
func (s *Store) keepIndex(ctx context.Context) {
	// A watch stream of its own, so progress requests concern this watch alone.
	ctx = metadata.NewOutgoingContext(ctx, indexStream)
	for ctx.Err() == nil {
		rev, err := s.fillIndex(ctx)
		if err == nil {
			// A fill reads every user through gRPC and folds every name: a
			// few times the index in garbage, on top of what etcd's own
			// start left. Collect it now and hand it back to the OS, or
			// the process keeps it resident (~90 MB over 100,000 users). In the
			// background: following the index must not wait for it.
			go debug.FreeOSMemory()
			select {
			case <-s.watching:
				s.followIndex(ctx, rev)
			case <-ctx.Done():
			}
		} else {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
	}
}

// fillIndex lists every user at one revision into a fresh index. Reading
// the users and folding their names is most of the work: one goroutine per
// core takes the key ranges in turn, and the ranges join the index in order.
func (s *Store) fillIndex(ctx context.Context) (int64, error) {
	var readers sync.WaitGroup
	defer readers.Wait() // no read outlives the fill (see Store.stop)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // on an error, the readers stop
	reads := s.userReads(true)
	n, rev, err := s.countUsers(ctx, reads)
	if err != nil {
		return 0, err
	}
	type part struct {
		ids   []string
		names []byte // folded names, one after the other
		ends  []int  // where each ends in names
		err   error
		done  chan struct{}
	}
	// Ranges of a thousand users or less, and a yield after each: a raft
	// goroutine waiting for a core waits for that, not for a 10 ms time
	// slice (the election of a restarted member runs meanwhile).
	ranges := userRanges(n, 1000)
	parts := make([]part, len(ranges))
	for i := range parts {
		parts[i].done = make(chan struct{})
	}
	var next atomic.Int64
	for range min(runtime.GOMAXPROCS(0), len(ranges)) {
		readers.Go(func() {
			for i := int(next.Add(1) - 1); i < len(parts); i = int(next.Add(1) - 1) {
				p := &parts[i]
				if p.err = ctx.Err(); p.err != nil {
					close(p.done)
					continue
				}
				p.err = s.readUsers(ctx, reads, ranges[i], &rev, func(kvs []*mvccpb.KeyValue) error {
					for _, kv := range kvs {
						if name, ok := userName(kv.Value); ok {
							p.ids = append(p.ids, string(kv.Key[len(usersPrefix):]))
							p.names = append(p.names, name...)
							p.ends = append(p.ends, len(p.names))
						}
					}
					return nil
				})
				close(p.done)
				runtime.Gosched()
			}
		})
	}
	fresh := newUserIndex()
	fresh.slots = make([]slot, 0, n)
	for i := range parts {
		p := &parts[i]
		<-p.done
		if p.err != nil {
			return 0, p.err
		}
		start := 0
		for j, id := range p.ids {
			fresh.add(id, p.names[start:p.ends[j]])
			start = p.ends[j]
		}
		*p = part{}
	}
	for g, l := range fresh.grams {
		fresh.grams[g] = slices.Clip(append([]uint32(nil), l...)) // drop append's spare capacity
	}
	x := s.index
	x.mu.Lock()
	x.ids, x.slots, x.names, x.grams, x.dead = fresh.ids, fresh.slots, fresh.names, fresh.grams, 0
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
