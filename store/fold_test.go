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
