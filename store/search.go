package store

import (
	"context"
	"unicode"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// fold makes "João" and "JOAO" compare equal: accents dropped, case folded.
func fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return cases.Fold().String(out)
}

// SearchUsers returns the users whose nome contains q, ignoring case and
// accents, from the in-memory index once it has caught up with every write
// acknowledged before the search began, by any process.
func (s *Store) SearchUsers(ctx context.Context, q string) ([][]byte, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	now, err := s.cli.Get(ctx, usersPrefix, clientv3.WithCountOnly())
	if err != nil {
		return nil, wrap(err)
	}
	if err := s.waitIndex(ctx, now.Header.Revision); err != nil {
		return nil, err
	}
	return s.index.search(fold(q)), nil
}
