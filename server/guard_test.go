package server

import (
	"fmt"
	"net/http/httptest"
	"testing"
)

// guarded is an Etcdapi-Guarda header value.
func guarded(kind, resource string, token int64) string {
	return fmt.Sprintf("%s=%s; token=%d", kind, resource, token)
}

// expectStale checks a guarded write refused: 409 naming the current token.
func expectStale(t testing.TB, w *httptest.ResponseRecorder, current int64) {
	t.Helper()
	expect(t, w, 409)
	body := decode[obj](t, w)
	if body["erro"] != "Token de fencing obsoleto" || num(body, "token_atual") != current {
		t.Fatalf("stale guard: %v, want token_atual %d", body, current)
	}
}

// Fencing, end to end: holder A stops renewing, B waits and gets the lock with
// a larger token; A's guarded write is refused, B's is applied.
func TestAGuardedWriteOfAnExpiredLockHolderIsRefused(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	_, a := acquire(t, "relatorio-guarda", `{"holder":"A","ttl":5}`)
	tokenA := num(a, "token")
	expect(t, call(t, api, "PUT", "/config/relatorio", `{"valor":"A"}`, "Etcdapi-Guarda", guarded("lock", "relatorio-guarda", tokenA)), 200)

	// B waits; A never renews, its lease expires.
	code, b, err := sendJSON(srv.Client(), "POST", srv.URL+"/lock/relatorio-guarda", `{"holder":"B","ttl":30,"aguardar":20}`)
	if err != nil || code != 200 {
		t.Fatalf("B: %d %v %v", code, b, err)
	}
	tokenB := num(b, "token")
	defer call(t, api, "DELETE", fmt.Sprintf("/lock/relatorio-guarda?token=%d", tokenB), "")
	if tokenB <= tokenA {
		t.Fatalf("token B %d not above A's %d", tokenB, tokenA)
	}
	expectStale(t, call(t, api, "PUT", "/config/relatorio", `{"valor":"A tarde demais"}`, "Etcdapi-Guarda", guarded("lock", "relatorio-guarda", tokenA)), tokenB)
	expectStale(t, call(t, api, "DELETE", "/config/relatorio", "", "Etcdapi-Guarda", guarded("lock", "relatorio-guarda", tokenA)), tokenB)
	expectStale(t, call(t, api, "POST", "/usuarios", `{"nome":"Escrito por A"}`, "Etcdapi-Guarda", guarded("lock", "relatorio-guarda", tokenA)), tokenB)
	if v := decode[obj](t, call(t, api, "GET", "/config/relatorio", ""))["relatorio"]; v != "A" {
		t.Fatalf("a refused write changed the value: %v", v)
	}
	expect(t, call(t, api, "PUT", "/config/relatorio", `{"valor":"B"}`, "Etcdapi-Guarda", guarded("lock", "relatorio-guarda", tokenB)), 200)
	if v := decode[obj](t, call(t, api, "GET", "/config/relatorio", ""))["relatorio"]; v != "B" {
		t.Fatalf("B's guarded write: %v", v)
	}
}

// The same with an election: a resigned leader's token no longer writes, and
// a candidate still waiting in line never did.
func TestAGuardedWriteOfAResignedLeaderIsRefused(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	w := call(t, api, "POST", "/eleicao/agendador-guarda/candidatar", `{"candidato":"A","ttl":30}`)
	expect(t, w, 200)
	tokenA := num(decode[obj](t, w), "token")
	led := make(chan obj, 1)
	go func() {
		_, b, _ := sendJSON(srv.Client(), "POST", srv.URL+"/eleicao/agendador-guarda/candidatar", `{"candidato":"B","ttl":30,"aguardar":20}`)
		led <- b
	}()
	await(t, "B in line", func() bool { return countKeys(t, "/election/agendador-guarda/") == 2 })
	// B waits behind A: its key exists, with a token nobody handed out yet.
	expectStale(t, call(t, api, "PUT", "/config/agenda", `{"valor":"B cedo"}`, "Etcdapi-Guarda", guarded("eleicao", "agendador-guarda", tokenA+1)), tokenA)
	expect(t, call(t, api, "PUT", "/config/agenda", `{"valor":"A"}`, "Etcdapi-Guarda", guarded("eleicao", "agendador-guarda", tokenA)), 200)

	expect(t, call(t, api, "DELETE", fmt.Sprintf("/eleicao/agendador-guarda?token=%d", tokenA), ""), 200)
	tokenB := num(<-led, "token")
	defer call(t, api, "DELETE", fmt.Sprintf("/eleicao/agendador-guarda?token=%d", tokenB), "")
	expectStale(t, call(t, api, "PUT", "/config/agenda", `{"valor":"A de novo"}`, "Etcdapi-Guarda", guarded("eleicao", "agendador-guarda", tokenA)), tokenB)
	expect(t, call(t, api, "PUT", "/config/agenda", `{"valor":"B"}`, "Etcdapi-Guarda", guarded("eleicao", "agendador-guarda", tokenB)), 200)
}

// And with a semaphore: a place given back no longer writes.
func TestAGuardedWriteOfAFormerSemaphoreHolderIsRefused(t *testing.T) {
	w := call(t, api, "POST", "/semaforo/exportacao-guarda", `{"holder":"A","limite":1,"ttl":30}`)
	expect(t, w, 200)
	tokenA := num(decode[obj](t, w), "token")
	created := call(t, api, "POST", "/usuarios", `{"nome":"Exportado"}`, "Etcdapi-Guarda", guarded("semaforo", "exportacao-guarda", tokenA))
	expect(t, created, 201)
	id := decode[obj](t, created)["id"].(string)
	expect(t, call(t, api, "DELETE", fmt.Sprintf("/semaforo/exportacao-guarda?token=%d", tokenA), ""), 200)
	w = call(t, api, "POST", "/semaforo/exportacao-guarda", `{"holder":"B","limite":1,"ttl":30}`)
	expect(t, w, 200)
	tokenB := num(decode[obj](t, w), "token")
	defer call(t, api, "DELETE", fmt.Sprintf("/semaforo/exportacao-guarda?token=%d", tokenB), "")
	expectStale(t, call(t, api, "PATCH", "/usuarios/"+id, `{"cidade":"A"}`, "Etcdapi-Guarda", guarded("semaforo", "exportacao-guarda", tokenA)), tokenB)
	expectStale(t, call(t, api, "DELETE", "/usuarios/"+id, "", "Etcdapi-Guarda", guarded("semaforo", "exportacao-guarda", tokenA)), tokenB)
	expect(t, call(t, api, "PATCH", "/usuarios/"+id, `{"cidade":"B"}`, "Etcdapi-Guarda", guarded("semaforo", "exportacao-guarda", tokenB)), 200)
	expect(t, call(t, api, "DELETE", "/usuarios/"+id, "", "Etcdapi-Guarda", guarded("semaforo", "exportacao-guarda", tokenB)), 200)
}

// Nobody holds it: token_atual is null. A malformed header is 400.
func TestGuardOfAFreeResourceAndMalformedGuards(t *testing.T) {
	w := call(t, api, "PUT", "/config/livre", `{"valor":1}`, "Etcdapi-Guarda", "lock=ninguem-guarda; token=5")
	expect(t, w, 409)
	if body := decode[obj](t, w); body["token_atual"] != nil || body["guarda"] != "lock" || body["recurso"] != "ninguem-guarda" {
		t.Fatalf("%v", body)
	}
	for _, h := range []string{"lock=x", "token=3", "lock=x; token=0", "lock=x; token=a", "trava=x; token=3", "lock=x; eleicao=y; token=3", "lock=../x; token=3"} {
		expect(t, call(t, api, "PUT", "/config/livre", `{"valor":1}`, "Etcdapi-Guarda", h), 400)
	}
}
