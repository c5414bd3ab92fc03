package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	usersPrefix = "/users/"
	emailPrefix = "/indices/email/"
)

// UserKey is the etcd key of a user.
func UserKey(id string) string { return usersPrefix + id }

func emailKey(email string) string { return emailPrefix + strings.ToLower(email) }

// emailOf reads the email out of a stored user document: exactly the field
// "email". Decoding into a struct would also take "EMAIL" or "Email", which
// encoding/json matches ignoring case, and those are fields like any other.
func emailOf(doc []byte) string {
	var fields map[string]json.RawMessage
	var email string
	if json.Unmarshal(doc, &fields) != nil || json.Unmarshal(fields["email"], &email) != nil {
		return ""
	}
	return email
}

// CreateUser stores doc under /users/{id} and claims its email in the same
// transaction, so two users never share an email. email is doc's field
// "email" ("" for none), which the caller has read already: users are written
// a lot, and the store need not decode the document again. It returns the
// user's revision.
func (s *Store) CreateUser(ctx context.Context, id, email string, doc []byte, g Guard) (int64, error) {
	key := UserKey(id)
	if email == "" && g.Kind == "" {
		// ids are random (UUIDv4): without an email there is nothing to collide.
		pctx, cancel := s.op(ctx)
		defer cancel()
		resp, err := s.cli.Put(pctx, key, string(doc))
		if err != nil {
			return 0, wrap(err)
		}
		return resp.Header.Revision, nil
	}
	cmps, err := s.guardCmps(ctx, g)
	if err != nil {
		return 0, err
	}
	ops := []clientv3.Op{clientv3.OpPut(key, string(doc))}
	if email != "" {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(emailKey(email)), "=", 0))
		ops = append(ops, clientv3.OpPut(emailKey(email), id))
	}
	tctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(tctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return 0, wrap(err)
	}
	if !resp.Succeeded {
		if err := s.guardFailed(ctx, g); err != nil {
			return 0, err
		}
		return 0, ErrEmailTaken
	}
	return resp.Header.Revision, nil
}

// GetUser returns the stored user document and its revision; ErrUnreadable
// when another etcd client wrote something else than a JSON object there.
func (s *Store) GetUser(ctx context.Context, id string) ([]byte, int64, error) {
	doc, rev, err := s.userDoc(ctx, id)
	if err == nil && !isObject(doc) {
		return nil, 0, fmt.Errorf("%w: %s", ErrUnreadable, UserKey(id))
	}
	return doc, rev, err
}

// userDoc reads the stored value under a user's key, whatever it is: a user
// another client broke can still be replaced or deleted.
func (s *Store) userDoc(ctx context.Context, id string) ([]byte, int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, UserKey(id))
	if err != nil {
		return nil, 0, wrap(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, ErrUserNotFound
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

// UpdateUser replaces a user with change(current) as one compare-and-swap,
// moving the email index with it. With ifMatch > 0 the user must still be at
// that revision (ErrStale otherwise); without it a concurrent write is retried.
func (s *Store) UpdateUser(ctx context.Context, id string, ifMatch int64, g Guard, change func(cur []byte) ([]byte, error)) ([]byte, int64, error) {
	key := UserKey(id)
	for {
		cur, rev, err := s.userDoc(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		if ifMatch > 0 && rev != ifMatch {
			return nil, 0, ErrStale
		}
		doc, err := change(cur)
		if err != nil {
			return nil, 0, err
		}
		var cmps []clientv3.Cmp
		ops := []clientv3.Op{clientv3.OpPut(key, string(doc))}
		oldEmail, newEmail := emailOf(cur), emailOf(doc)
		if !strings.EqualFold(oldEmail, newEmail) {
			if oldEmail != "" {
				ops = append(ops, clientv3.OpDelete(emailKey(oldEmail)))
			}
			if newEmail != "" {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(emailKey(newEmail)), "=", 0))
				ops = append(ops, clientv3.OpPut(emailKey(newEmail), id))
			}
		}
		newRev, changed, err := s.commitUser(ctx, key, rev, g, cmps, ops)
		switch {
		case err != nil:
			return nil, 0, err
		case newRev > 0:
			return doc, newRev, nil
		case !changed:
			return nil, 0, ErrEmailTaken
		case ifMatch > 0:
			return nil, 0, ErrStale
		}
	}
}

// DeleteUser removes a user and its email index in one transaction.
func (s *Store) DeleteUser(ctx context.Context, id string, ifMatch int64, g Guard) error {
	key := UserKey(id)
	for {
		cur, rev, err := s.userDoc(ctx, id)
		if err != nil {
			return err
		}
		if ifMatch > 0 && rev != ifMatch {
			return ErrStale
		}
		ops := []clientv3.Op{clientv3.OpDelete(key)}
		if email := emailOf(cur); email != "" {
			ops = append(ops, clientv3.OpDelete(emailKey(email)))
		}
		newRev, _, err := s.commitUser(ctx, key, rev, g, nil, ops)
		if err != nil || newRev > 0 {
			return err
		}
		if ifMatch > 0 {
			return ErrStale
		}
	}
}

// commitUser commits a user transaction guarded by the revision the user was
// read at, and g. newRev is 0 when a compare failed: changed tells whether the
// user moved on since it was read (otherwise the email was taken).
func (s *Store) commitUser(ctx context.Context, key string, rev int64, g Guard, cmps []clientv3.Cmp, ops []clientv3.Op) (newRev int64, changed bool, err error) {
	guard, err := s.guardCmps(ctx, g)
	if err != nil {
		return 0, false, err
	}
	cmps = append(append(cmps, guard...), clientv3.Compare(clientv3.ModRevision(key), "=", rev))
	tctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(tctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return 0, false, wrap(err)
	}
	if !resp.Succeeded {
		if err := s.guardFailed(ctx, g); err != nil {
			return 0, false, err
		}
	}
	if resp.Succeeded {
		return resp.Header.Revision, false, nil
	}
	got := resp.Responses[0].GetResponseRange()
	if len(got.Kvs) == 0 {
		return 0, false, ErrUserNotFound
	}
	return 0, got.Kvs[0].ModRevision != rev, nil
}

// UserPage is one page of users, read at one revision.
type UserPage struct {
	Docs     [][]byte
	LastID   string // cursor for the next page
	Revision int64
	More     bool
}

// ListUsers returns up to limit users whose id sorts after `after`, read at
// revision rev (0: the current one). ErrCompacted once rev is compacted away.
func (s *Store) ListUsers(ctx context.Context, rev int64, after string, limit int) (UserPage, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	start := usersPrefix
	if after != "" {
		start = usersPrefix + after + "\x00"
	}
	resp, err := s.cli.Get(ctx, start, clientv3.WithRange(clientv3.GetPrefixRangeEnd(usersPrefix)),
		clientv3.WithRev(rev), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return UserPage{}, wrap(err)
	}
	p := UserPage{Revision: resp.Header.Revision, More: resp.More, Docs: make([][]byte, 0, len(resp.Kvs))}
	if rev > 0 {
		p.Revision = rev
	}
	var skipped []string
	for _, kv := range resp.Kvs {
		if isObject(kv.Value) {
			p.Docs = append(p.Docs, kv.Value)
		} else {
			skipped = append(skipped, string(kv.Key))
		}
	}
	s.skipped(skipped)
	if n := len(resp.Kvs); n > 0 {
		p.LastID = strings.TrimPrefix(string(resp.Kvs[n-1].Key), usersPrefix)
	}
	return p, nil
}

// EachUserPage reads every user at one revision and hands them to fn a page
// at a time, leaving out what another client wrote that is not a user.
func (s *Store) EachUserPage(ctx context.Context, fn func(docs [][]byte) error) error {
	var skipped []string
	_, err := s.eachUser(ctx, func(kvs []*mvccpb.KeyValue) error {
		docs := make([][]byte, 0, len(kvs))
		for _, kv := range kvs {
			if isObject(kv.Value) {
				docs = append(docs, kv.Value)
			} else {
				skipped = append(skipped, string(kv.Key))
			}
		}
		return fn(docs)
	})
	s.skipped(skipped)
	return err
}

// eachUser reads /users/ at one revision, which it returns, a page at a time.
// The number of users, to cut the ranges, comes from the search index once
// it is filled, or else from one count.
func (s *Store) eachUser(ctx context.Context, fn func(kvs []*mvccpb.KeyValue) error) (int64, error) {
	reads := s.userReads(false)
	s.index.mu.RLock()
	n, filled := int64(s.index.ids.Len()), s.index.rev > 0
	s.index.mu.RUnlock()
	var rev int64
	if !filled {
		var err error
		if n, rev, err = s.countUsers(ctx, reads); err != nil {
			return 0, err
		}
	}
	for _, r := range userRanges(n, 16000) {
		if err := s.readUsers(ctx, reads, r, &rev, fn); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

// userReads are how eachUser and the index's fill read etcd: a listing
// streams pages of 1000 users; the fill reads a whole range at once (etcd
// counts what is left of a range on every limited read, three times the
// range's keys in pages of 1000). An embedded member's fill reads
// serializably, which needs no leader: the index fills while its member still
// elects itself. On an external cluster it reads linearizably: the client
// spreads reads over the members, and one that has not yet applied the
// fill's revision would refuse a serializable read at it.
type userReads struct {
	op   func(context.Context) (context.Context, context.CancelFunc)
	opts []clientv3.OpOption
	page int64
}

func (s *Store) userReads(fill bool) userReads {
	switch {
	case !fill:
		return userReads{op: s.op, page: 1000}
	case s.member == nil:
		return userReads{op: s.op, page: 1 << 15}
	}
	return userReads{
		op: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, s.timeout)
		},
		opts: []clientv3.OpOption{clientv3.WithSerializable()},
		page: 1 << 15,
	}
}

// countUsers returns the number of users and the revision it was counted at.
func (s *Store) countUsers(ctx context.Context, reads userReads) (int64, int64, error) {
	gctx, cancel := reads.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(gctx, usersPrefix, slices.Concat(reads.opts, []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()})...)
	if err != nil {
		return 0, 0, wrap(err)
	}
	return resp.Count, resp.Header.Revision, nil
}

// userRanges cuts /users/, holding about n users, into key ranges to page
// through one by one. etcd counts every key left in a range on each limited
// read, so paging through one big range costs O(n²); the user ids are UUIDs,
// so the key space is cut into 1, 16, 256 or 4096 hex-prefix ranges of fewer
// than about per users each: O(n) in all.
func userRanges(n, per int64) [][2]string {
	depth := 0
	for p := n / per; p >= 1 && depth < 3; p /= 16 {
		depth++
	}
	parts := 1 << (4 * depth)
	ranges := make([][2]string, parts)
	for i := range parts {
		start, end := usersPrefix, clientv3.GetPrefixRangeEnd(usersPrefix)
		if i > 0 {
			start = usersPrefix + fmt.Sprintf("%0*x", depth, i)
		}
		if i+1 < parts {
			end = usersPrefix + fmt.Sprintf("%0*x", depth, i+1)
		}
		ranges[i] = [2]string{start, end}
	}
	return ranges
}

// readUsers pages through one key range at revision *rev; 0 is set to the
// first read's revision, for every later read.
func (s *Store) readUsers(ctx context.Context, reads userReads, r [2]string, rev *int64, fn func(kvs []*mvccpb.KeyValue) error) error {
	start, end := r[0], r[1]
	for {
		gctx, cancel := reads.op(ctx)
		resp, err := s.cli.Get(gctx, start, slices.Concat(reads.opts, []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithRev(*rev), clientv3.WithLimit(reads.page)})...)
		cancel()
		if err != nil {
			return wrap(err)
		}
		if *rev == 0 {
			*rev = resp.Header.Revision
		}
		if len(resp.Kvs) > 0 {
			if err := fn(resp.Kvs); err != nil {
				return err
			}
		}
		if !resp.More {
			return nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
