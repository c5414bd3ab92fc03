package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// folders hold the transformer fold uses. Building one allocates kilobytes of
// buffers: pooled, the index's fill of 100,000 users takes a third less time.
var folders = sync.Pool{New: func() any {
	return transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC, cases.Fold())
}}

// fold makes "João" and "JOAO" compare equal: accents dropped, case folded.
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return foldLatin1(s)
		}
	}
	// ASCII has no accents, and folds to lower case: a third of an index fill.
	return strings.ToLower(s)
}

// latin1 is foldUnicode of each rune from U+0080 to U+00FF ("Ç" → "c", "ß" →
// "ss"). A string of such runes and ASCII folds rune by rune: none of them
// is a combining mark that could join its neighbour. Portuguese names are
// such strings, and the table folds them in a fifth of foldUnicode's time.
var latin1 = func() (t [0x80]string) {
	for r := range t {
		t[r] = foldUnicode(string(rune(0x80 + r)))
	}
	return t
}()

// foldLatin1 folds s with the table, or with foldUnicode past U+00FF.
func foldLatin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b = append(b, byte(r))
		case r <= 0xFF:
			b = append(b, latin1[r-0x80]...)
		default:
			return foldUnicode(s)
		}
	}
	return string(b)
}

func foldUnicode(s string) string {
	t := folders.Get().(transform.Transformer)
	defer folders.Put(t)
	out, _, err := transform.String(t, s)
	if err != nil {
		return s
	}
	return out
}

// SearchUsers returns up to limit users (0: all) whose nome contains q,
// ignoring case and accents, in id order after `after`. The index answers
// once it has caught up with every write acknowledged before the search began,
// by any process (read-your-writes); the documents are read from etcd at the
// revision the index reflected, or at rev, the first page's, when paging.
func (s *Store) SearchUsers(ctx context.Context, q string, rev int64, after string, limit int) (UserPage, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	ask := 0
	if limit > 0 {
		ask = limit + 1 // one more tells whether more remain
	}
	h, docs, err := s.found(ctx, q, after, ask, rev == 0)
	if err != nil {
		return UserPage{}, err
	}
	at := h.rev
	if rev > at {
		// The index has seen every acknowledged write: no cursor was made at rev.
		return UserPage{}, fmt.Errorf("%w: %d, index at %d", ErrFutureRev, rev, at)
	}
	if rev == 0 {
		rev = at
	}
	p := UserPage{Revision: rev}
	ids := h.ids
	if limit > 0 && len(ids) > limit {
		ids, p.More = ids[:limit], true
	}
	if len(ids) > 0 {
		p.LastID = ids[len(ids)-1]
	}
	if docs != nil {
		p.Docs = docs[:min(len(docs), len(ids))] // docs follow h.ids, which may hold the one more
		return p, nil
	}
	p.Docs = make([][]byte, 0, len(ids))
	err = s.fetchUsers(ctx, ids, rev, h.dense, func(docs [][]byte) error {
		p.Docs = append(p.Docs, docs...)
		return nil
	})
	if rev != at {
		// A later page finds ids in the index as it is now but reads the users
		// as they were at the first page's revision: keep those that matched then.
		// (One that matched then and no longer does is missed.)
		want := fold(q)
		p.Docs = slices.DeleteFunc(p.Docs, func(doc []byte) bool {
			name, ok := userName(doc)
			return !ok || !strings.Contains(name, want)
		})
	}
	return p, err
}

// EachFoundUserPage is SearchUsers without a limit, handing the users to fn a
// page at a time: a search that matches every user costs no more memory than one page.
func (s *Store) EachFoundUserPage(ctx context.Context, q string, fn func(docs [][]byte) error) error {
	fctx, cancel := s.op(ctx)
	h, docs, err := s.found(fctx, q, "", 0, true)
	cancel()
	if err != nil {
		return err
	}
	if docs != nil {
		return fn(docs)
	}
	return s.fetchUsers(ctx, h.ids, h.rev, h.dense, fn)
}

// found searches the index once it reflects every write acknowledged before
// the search began (read-your-writes). Most often it already does: then one
// linearizable read shows it (its revision is the index's) and, when withDocs
// and the hits are few, is the read of their users, returned in docs.
// Otherwise found waits for the index and searches it again; docs is nil and
// the users are still to be read, at h.rev.
func (s *Store) found(ctx context.Context, q, after string, limit int, withDocs bool) (h hits, docs [][]byte, err error) {
	h = s.index.search(fold(q), after, limit)
	// Any read's header has the newest revision: with users to read, theirs.
	ops := []clientv3.Op{clientv3.OpGet(usersPrefix, clientv3.WithCountOnly())}
	withDocs = withDocs && len(h.ids) > 0 && len(h.ids) <= 128 // a get each at most: etcd takes 128 operations in a transaction
	if withDocs {
		ops = s.readOps(h.ids, 0, h.dense)
	}
	resps, rev, err := s.read(ctx, ops)
	if err != nil {
		return hits{}, nil, err
	}
	if rev == h.rev {
		if !withDocs {
			return h, nil, nil
		}
		docs, rest := collect(h.ids, h.dense, resps)
		if len(rest) == 0 {
			return h, docs, nil
		}
		// A range cut short by keys the index leaves out: read the rest as fetchUsers does.
		more, _, err := s.usersAt(ctx, rest, h.rev, false)
		return h, append(docs, more...), err
	}
	if err := s.waitIndex(ctx, rev); err != nil {
		return hits{}, nil, err
	}
	return s.index.search(fold(q), after, limit), nil, nil
}

// read runs ops, reads, and returns their answers and the revision they saw:
// one as a plain request (etcd traces every operation of a transaction, at a
// cost), more as a transaction.
func (s *Store) read(ctx context.Context, ops []clientv3.Op) ([]*etcdserverpb.ResponseOp, int64, error) {
	if len(ops) == 1 {
		resp, err := s.cli.Do(ctx, ops[0])
		if err != nil {
			return nil, 0, wrap(err)
		}
		r := (*etcdserverpb.RangeResponse)(resp.Get())
		return []*etcdserverpb.ResponseOp{{Response: &etcdserverpb.ResponseOp_ResponseRange{ResponseRange: r}}}, r.Header.Revision, nil
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, 0, wrap(err)
	}
	return resp.Responses, resp.Header.Revision, nil
}

// fetchUsers reads the users of ids (ascending) at revision rev, in that
// order, up to 128 at a time (etcd's limit of operations in a transaction).
// A user missing at rev (created after it, when paging) is left out. Dense ids
// (most users between the first and the last) are read as one range instead
// of a get each: a broad search's page costs about one range read.
func (s *Store) fetchUsers(ctx context.Context, ids []string, rev int64, dense bool, fn func(docs [][]byte) error) error {
	for chunk := range slices.Chunk(ids, 128) {
		docs, rest, err := s.usersAt(ctx, chunk, rev, dense)
		if err == nil && len(rest) > 0 {
			var more [][]byte
			more, _, err = s.usersAt(ctx, rest, rev, false)
			docs = append(docs, more...)
		}
		if err != nil {
			return err
		}
		if err := fn(docs); err != nil {
			return err
		}
	}
	return nil
}

// usersAt reads the users of ids at rev (serializable: the index has seen
// rev), as a range if dense, else with a get each. rest are the ids that a
// range cut short by its limit did not reach.
func (s *Store) usersAt(ctx context.Context, ids []string, rev int64, dense bool) (docs [][]byte, rest []string, err error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resps, _, err := s.read(ctx, s.readOps(ids, rev, dense))
	if err != nil {
		return nil, nil, err
	}
	docs, rest = collect(ids, dense, resps)
	return docs, rest, nil
}

// readOps read the users of ids (ascending): one range when dense (limited
// to 4 keys a user), else a get each (at most 128). rev 0 is the newest
// revision. An older one is read serializably from an embedded member: the
// index has seen rev through that member's own watch, so it has applied rev.
// Another member of an external cluster may not have yet: it reads
// linearizably, to wait until it has.
func (s *Store) readOps(ids []string, rev int64, dense bool) []clientv3.Op {
	at := []clientv3.OpOption{clientv3.WithRev(rev)}
	if rev != 0 && s.member != nil {
		at = append(at, clientv3.WithSerializable())
	}
	if dense && len(ids) > 1 {
		return []clientv3.Op{clientv3.OpGet(UserKey(ids[0]), append(at, clientv3.WithRange(UserKey(ids[len(ids)-1])+"\x00"),
			clientv3.WithLimit(int64(4*len(ids))))...)}
	}
	ops := make([]clientv3.Op, len(ids))
	for i, id := range ids {
		ops[i] = clientv3.OpGet(UserKey(id), at...)
	}
	return ops
}

// collect takes the users of ids from the answers to readOps, in order. rest
// are the ids beyond a range that its limit cut short.
func collect(ids []string, dense bool, resps []*etcdserverpb.ResponseOp) (docs [][]byte, rest []string) {
	docs = make([][]byte, 0, len(ids))
	if !dense || len(ids) < 2 {
		for _, r := range resps {
			if kvs := r.GetResponseRange().Kvs; len(kvs) > 0 {
				docs = append(docs, kvs[0].Value)
			}
		}
		return docs, nil
	}
	r := resps[0].GetResponseRange()
	i := 0 // ids and the range are both in key order: merge them
	for _, kv := range r.Kvs {
		id := string(kv.Key[len(usersPrefix):])
		for i < len(ids) && ids[i] < id {
			i++ // not there at that revision
		}
		if i < len(ids) && ids[i] == id {
			docs = append(docs, kv.Value)
			i++
		}
	}
	if r.More {
		rest = ids[i:]
	}
	return docs, rest
}
