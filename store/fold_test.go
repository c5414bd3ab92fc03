package store

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// TestFoldASCIIAsUnicode: fold's shortcut for ASCII names gives what the
// Unicode fold gives, for every ASCII character.
func TestFoldASCIIAsUnicode(t *testing.T) {
	all := make([]byte, 128)
	for i := range all {
		all[i] = byte(i)
	}
	for _, s := range []string{string(all), "Seed 01234", "MARIA da Silva", "O'Brien-Smith", ""} {
		if got, want := fold(s), foldUnicode(s); got != want {
			t.Errorf("fold(%q) = %q, want %q", s, got, want)
		}
	}
	if got := fold("JOÃO Ação"); got != "joao acao" {
		t.Errorf(`fold("JOÃO Ação") = %q`, got)
	}
}

// TestFoldLatin1AsUnicode: the table gives what the Unicode fold gives, for
// every pair of runes up to U+00FF (an invalid byte too), and past it.
func TestFoldLatin1AsUnicode(t *testing.T) {
	var runes []string
	for r := rune(0); r <= 0xFF; r++ {
		runes = append(runes, string(r))
	}
	runes = append(runes, "\xc3", "e\u0301", "Ω", "ǅ")
	for _, a := range runes {
		for _, b := range runes {
			if s := a + b; fold(s) != foldUnicode(s) {
				t.Fatalf("fold(%q) = %q, want %q", s, fold(s), foldUnicode(s))
			}
		}
	}
	for _, s := range []string{"Conceição Araújo Magalhães", "JOSÉ DA SILVA", "Straße", "Ærø", "Łódź"} {
		if fold(s) != foldUnicode(s) {
			t.Errorf("fold(%q) = %q, want %q", s, fold(s), foldUnicode(s))
		}
	}
}

// FuzzUserNameAsEncodingJSON: the index reads a stored user's nome with
// goccy/go-json as encoding/json would, on any value another client may
// have written (valid UTF-8: etcdapi refuses anything else).
func FuzzUserNameAsEncodingJSON(f *testing.F) {
	for _, seed := range []string{
		`{"nome":"Conceição Araújo","email":"c@uol.com.br","idade":34}`, `{"nome":1}`, `{"nome":null}`, `[]`, `{}`,
		`{"nome":"a","nome":"b"}`, `{"NOME":"caixa"}`, `{"nome":"\u00e9\ud83d\ude00"}`, ` {"nome":"x"} `, `{"nome":"x"}garbage`, `{"nome":"x",}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !utf8.Valid(doc) {
			return
		}
		var u struct {
			Nome string `json:"nome"`
		}
		want, wantOK := "", startsObject(doc) && json.Unmarshal(doc, &u) == nil
		if wantOK {
			want = fold(u.Nome)
		}
		if got, ok := userName(doc); got != want || ok != wantOK {
			t.Fatalf("userName(%q) = %q, %v; encoding/json reads %q, %v", doc, got, ok, want, wantOK)
		}
	})
}
