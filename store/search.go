package store

import (
	"context"
	"encoding/json"
	"strings"
	"unicode"

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

// SearchUsers returns the users whose nome contains q, ignoring case and accents.
func (s *Store) SearchUsers(ctx context.Context, q string) ([][]byte, error) {
	q = fold(q)
	found := [][]byte{}
	var after string
	var rev int64
	for {
		p, err := s.ListUsers(ctx, rev, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, doc := range p.Docs {
			var u struct {
				Nome string `json:"nome"`
			}
			if json.Unmarshal(doc, &u) == nil && strings.Contains(fold(u.Nome), q) {
				found = append(found, doc)
			}
		}
		if !p.More {
			return found, nil
		}
		after, rev = p.LastID, p.Revision
	}
}
