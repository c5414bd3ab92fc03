package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"unicode"

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
	h, err := s.found(ctx, q, after, ask)
	if err != nil {
		return UserPage{}, err
	}
	at := h.rev
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
			var u struct {
				Nome string `json:"nome"`
			}
			return json.Unmarshal(doc, &u) != nil || !strings.Contains(fold(u.Nome), want)
		})
	}
	return p, err
}

// EachFoundUserPage is SearchUsers without a limit, handing the users to fn a
// page at a time: a search that matches every user costs no more memory than one page.
func (s *Store) EachFoundUserPage(ctx context.Context, q string, fn func(docs [][]byte) error) error {
	fctx, cancel := s.op(ctx)
	h, err := s.found(fctx, q, "", 0)
	cancel()
	if err != nil {
		return err
	}
	return s.fetchUsers(ctx, h.ids, h.rev, h.dense, fn)
}

// found waits for the index to catch up with the current revision, then searches it.
func (s *Store) found(ctx context.Context, q, after string, limit int) (hits, error) {
	now, err := s.cli.Get(ctx, usersPrefix, clientv3.WithCountOnly())
	if err != nil {
		return hits{}, wrap(err)
	}
	if err := s.waitIndex(ctx, now.Header.Revision); err != nil {
		return hits{}, err
	}
	return s.index.search(fold(q), after, limit), nil
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

// usersAt reads the users of ids at rev, as a range if dense, else with a
// get each. rest are the ids a range cut short by its limit did not reach.
func (s *Store) usersAt(ctx context.Context, ids []string, rev int64, dense bool) (docs [][]byte, rest []string, err error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	docs = make([][]byte, 0, len(ids))
	if dense && len(ids) > 1 {
		resp, err := s.cli.Get(ctx, UserKey(ids[0]), clientv3.WithRange(UserKey(ids[len(ids)-1])+"\x00"),
			clientv3.WithLimit(int64(4*len(ids))), clientv3.WithRev(rev), clientv3.WithSerializable())
		if err != nil {
			return nil, nil, wrap(err)
		}
		i := 0 // ids and the range are both in key order: merge them
		for _, kv := range resp.Kvs {
			id := string(kv.Key[len(usersPrefix):])
			for i < len(ids) && ids[i] < id {
				i++ // not there at rev
			}
			if i < len(ids) && ids[i] == id {
				docs = append(docs, kv.Value)
				i++
			}
		}
		if resp.More {
			rest = ids[i:]
		}
		return docs, rest, nil
	}
	ops := make([]clientv3.Op, len(ids))
	for i, id := range ids {
		ops[i] = clientv3.OpGet(UserKey(id), clientv3.WithRev(rev), clientv3.WithSerializable())
	}
	if len(ids) == 1 {
		// A narrow search's usual answer: a plain get costs less than a transaction.
		resp, err := s.cli.Do(ctx, ops[0])
		if err != nil {
			return nil, nil, wrap(err)
		}
		for _, kv := range resp.Get().Kvs {
			docs = append(docs, kv.Value)
		}
		return docs, nil, nil
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, nil, wrap(err)
	}
	for _, r := range resp.Responses {
		if kvs := r.GetResponseRange().Kvs; len(kvs) > 0 {
			docs = append(docs, kvs[0].Value)
		}
	}
	return docs, nil, nil
}
