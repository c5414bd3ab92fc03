package server

import (
	"strings"
	"testing"
)

// TestCoordinationBadInput: every route of fair locks, elections and
// semaphores answers bad input with 400 naming the field, and takes nothing.
func TestCoordinationBadInput(t *testing.T) {
	for _, tc := range []struct{ method, path, body, field string }{
		{"POST", "/eleicao/e/candidatar", `{}`, "candidato"},
		{"POST", "/eleicao/e/candidatar", `{"candidato":""}`, "candidato"},
		{"POST", "/eleicao/e/candidatar", `{"candidato":7}`, "candidato"},
		{"POST", "/eleicao/e/candidatar", `{"candidato":"a","ttl":4}`, "ttl"},
		{"POST", "/eleicao/e/candidatar", `{"candidato":"a","ttl":"x"}`, "ttl"},
		{"POST", "/eleicao/e/candidatar", `{"candidato":"a","aguardar":61}`, "aguardar"},
		{"POST", "/eleicao/e/candidatar", `{"candidato":"a","aguardar":-1}`, "aguardar"},
		{"PUT", "/eleicao/e", `{"valor":1}`, "token"},
		{"PUT", "/eleicao/e", `{"token":3}`, "valor"},
		{"PUT", "/eleicao/e", `{"token":"x","valor":1}`, "token"},
		{"POST", "/eleicao/e/renovar", `{}`, "token"},
		{"POST", "/eleicao/e/renovar", `{"token":0}`, "token"},
		{"DELETE", "/eleicao/e", ``, "token"},
		{"DELETE", "/eleicao/e?token=abc", ``, "token"},
		{"DELETE", "/eleicao/e?token=-2", ``, "token"},
		{"POST", "/semaforo/s", `{}`, "limite"},
		{"POST", "/semaforo/s", `{"limite":0}`, "limite"},
		{"POST", "/semaforo/s", `{"limite":1001}`, "limite"},
		{"POST", "/semaforo/s", `{"limite":1.5}`, "limite"},
		{"POST", "/semaforo/s", `{"limite":2,"ttl":3601}`, "ttl"},
		{"POST", "/semaforo/s", `{"limite":2,"aguardar":100}`, "aguardar"},
		{"POST", "/semaforo/s", `{"limite":2,"holder":[]}`, "holder"},
		{"POST", "/semaforo/s/renovar", `{}`, "token"},
		{"POST", "/semaforo/s/renovar", `{"token":"1"}`, "token"},
		{"DELETE", "/semaforo/s", ``, "token"},
		{"DELETE", "/semaforo/s?token=0", ``, "token"},
		{"POST", "/lock/l", `{"aguardar":"x"}`, "aguardar"},
		{"POST", "/eleicao/a..b%2F/candidatar", `{"candidato":"a"}`, "nome"},
		{"GET", "/semaforo/..", ``, "nome"},
		{"POST", "/lock/" + strings.Repeat("x", 129), `{}`, "recurso"},
	} {
		w := call(t, api, tc.method, tc.path, tc.body)
		expect(t, w, 400)
		if campos, _ := decode[obj](t, w)["campos"].(obj); campos[tc.field] == nil {
			t.Errorf("%s %s %s: campos %v lacks %s", tc.method, tc.path, tc.body, campos, tc.field)
		}
	}
	for _, path := range []string{"/eleicao/e/candidatar", "/semaforo/s"} {
		for _, body := range []string{`[1]`, `null`, `"x"`, `{`} {
			expect(t, call(t, api, "POST", path, body), 400)
		}
	}
	for _, bad := range []string{"..", "a%2Fb", "a%20b"} {
		expect(t, call(t, api, "POST", "/eleicao/"+bad+"/candidatar", `{"candidato":"a"}`), 400)
		expect(t, call(t, api, "POST", "/semaforo/"+bad, `{"limite":1}`), 400)
		expect(t, call(t, api, "GET", "/eleicao/"+bad, ""), 400)
	}
	if n := countKeys(t, "/election/e/") + countKeys(t, "/semaphores/s/") + countKeys(t, "/locks/l"); n != 0 {
		t.Fatalf("bad input left %d keys", n)
	}
}
