package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

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
			return foldUnicode(s)
		}
	}
	// ASCII has no accents, and folds to lower case: a third of an index fill.
	return strings.ToLower(s)
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
	ids, at, err := s.found(ctx, q, after, ask)
	if err != nil {
		return UserPage{}, err
	}
	if rev == 0 {
		rev = at
	}
	p := UserPage{Revision: rev}
	if limit > 0 && len(ids) > limit {
		ids, p.More = ids[:limit], true
	}
	if len(ids) > 0 {
		p.LastID = ids[len(ids)-1]
	}
	p.Docs = make([][]byte, 0, len(ids))
	err = s.fetchUsers(ctx, ids, rev, func(docs [][]byte) error {
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
	ids, rev, err := s.found(fctx, q, "", 0)
	cancel()
	if err != nil {
		return err
	}
	return s.fetchUsers(ctx, ids, rev, fn)
}

// found waits for the index to catch up with the current revision, then searches it.
func (s *Store) found(ctx context.Context, q, after string, limit int) ([]string, int64, error) {
	now, err := s.cli.Get(ctx, usersPrefix, clientv3.WithCountOnly())
	if err != nil {
		return nil, 0, wrap(err)
	}
	if err := s.waitIndex(ctx, now.Header.Revision); err != nil {
		return nil, 0, err
	}
	ids, rev := s.index.search(fold(q), after, limit)
	return ids, rev, nil
}

// fetchUsers reads the users of ids at revision rev, in that order, a
// transaction of serializable gets (at most etcd's 128 operations) at a time.
// A user missing at rev (created after it, when paging) is left out.
func (s *Store) fetchUsers(ctx context.Context, ids []string, rev int64, fn func(docs [][]byte) error) error {
	if len(ids) == 1 {
		// A narrow search's usual answer: a plain get costs less than a transaction.
		gctx, cancel := s.op(ctx)
		resp, err := s.cli.Get(gctx, UserKey(ids[0]), clientv3.WithRev(rev), clientv3.WithSerializable())
		cancel()
		if err != nil {
			return wrap(err)
		}
		docs := make([][]byte, 0, 1)
		for _, kv := range resp.Kvs {
			docs = append(docs, kv.Value)
		}
		return fn(docs)
	}
	for chunk := range slices.Chunk(ids, 128) {
		ops := make([]clientv3.Op, len(chunk))
		for i, id := range chunk {
			ops[i] = clientv3.OpGet(UserKey(id), clientv3.WithRev(rev), clientv3.WithSerializable())
		}
		gctx, cancel := s.op(ctx)
		resp, err := s.cli.Txn(gctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return wrap(err)
		}
		docs := make([][]byte, 0, len(chunk))
		for _, r := range resp.Responses {
			if kvs := r.GetResponseRange().Kvs; len(kvs) > 0 {
				docs = append(docs, kvs[0].Value)
			}
		}
		if err := fn(docs); err != nil {
			return err
		}
	}
	return nil
}
