package store

import "testing"

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
