package server

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
)

// BenchmarkNewUser is the hot path of POST /usuarios without etcd: decode the
// body, validate it, and encode the document to store.
func BenchmarkNewUser(b *testing.B) {
	body := []byte(`{"nome":"Conceição Araújo Magalhães","email":"conceicao.araujo.magalhaes@uol.com.br","idade":34,"cidade":"São Luís"}`)
	b.ReportAllocs()
	for b.Loop() {
		fields, err := objectFields(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := newUser(fields, "2bb66acb-3a15-45f0-84af-83135fa87ca9", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteArray encodes a page of 500 stored users as a JSON array.
func BenchmarkWriteArray(b *testing.B) {
	docs := make([][]byte, 500)
	for i := range docs {
		docs[i] = fmt.Appendf(nil, `{"_id":"%036d","nome":"Usuário %d","idade":30,"criado_em":"2026-11-27T13:46:46.744693368Z"}`, i, i)
	}
	gin.SetMode(gin.ReleaseMode)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		writeArray(c, 200, docs)
	}
}

// BenchmarkCreateUser is POST /usuarios through the handler, on the real member, from many goroutines.
var benchUsers atomic.Int64

func BenchmarkCreateUser(b *testing.B) {
	b.SetParallelism(16)
	n := &benchUsers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			w := call(b, api, "POST", "/usuarios", fmt.Sprintf(`{"nome":"Carga %d","email":"bench%d@email.com","idade":30}`, i, i))
			if w.Code != 201 {
				b.Fatal(w.Code)
			}
		}
	})
}

// BenchmarkConfigWrites compares, in one run, a transaction of two writes under
// a condition (POST /transacao) with a single PUT /config/{chave}, both through
// the handler on the real member, from many goroutines.
func BenchmarkConfigWrites(b *testing.B) {
	var keys atomic.Int64
	send := func(b *testing.B, method, path, body string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
	b.Run("PUT", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				send(b, "PUT", fmt.Sprintf("/config/bench-%d", keys.Add(1)%64), `{"valor":{"limite":200}}`)
			}
		})
	})
	b.Run("transacao", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k := keys.Add(1) % 64
				send(b, "POST", "/transacao", fmt.Sprintf(
					`{"se":[{"chave":"bench-ausente-%d","existe":false}],"entao":[{"definir":"bench-%d","valor":{"limite":200}},{"definir":"bench-par-%d","valor":true}]}`, k, k, k))
			}
		})
	})
}
