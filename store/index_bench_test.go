package store

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

func fillSynthetic(n int) (*userIndex, int) {
	x := newUserIndex()
	raw := 0
	for i := range n {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012d", i, i)
		doc := fmt.Appendf(nil, `{"_id":%q,"nome":"Usuário Número %06d","email":"u%d@email.com","idade":%d,"cidade":"São Paulo","criado_em":"2026-11-27T13:46:46.744693368Z","atualizado_em":"2026-11-27T13:46:46.744693368Z"}`, id, i, i, i%100)
		raw += len(doc)
		x.put(id, doc)
	}
	for g, l := range x.grams {
		x.grams[g] = slices.Clip(append([]uint32(nil), l...))
	}
	return x, raw
}

// BenchmarkSearch100k searches 100,000 users for one name, ignoring case and accents.
func BenchmarkSearch100k(b *testing.B) {
	x, _ := fillSynthetic(100_000)
	b.ReportAllocs()
	for b.Loop() {
		q := fold(fmt.Sprintf("USUARIO NUMERO %06d", rand.IntN(100_000)))
		if got := x.search(q); len(got) != 1 {
			b.Fatalf("%d found", len(got))
		}
	}
}

// BenchmarkIndexMemory reports the index's heap per byte of raw user documents.
func BenchmarkIndexMemory(b *testing.B) {
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x, raw := fillSynthetic(100_000)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(raw), "heap/raw")
		runtime.KeepAlive(x)
	}
}
