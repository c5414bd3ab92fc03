package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Two transactions racing on the same condition: exactly one applies, on
// every try, and the other writes nothing.
func TestRacingTransactionsApplyExactlyOnce(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	for i := range 200 {
		key := fmt.Sprintf("corrida-%d", i)
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[j], _, _ = sendJSON(srv.Client(), "POST", srv.URL+"/transacao", fmt.Sprintf(
					`{"se":[{"chave":%q,"existe":false}],"entao":[{"definir":%q,"valor":%d},{"definir":"%s-lado","valor":%d}]}`, key, key, j, key, j))
			}()
		}
		wg.Wait()
		if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
			t.Fatalf("try %d: %v, want one 200 and one 409", i, codes)
		}
		// Both keys come from the same transaction.
		v := decode[obj](t, call(t, api, "GET", "/config/"+key, ""))[key]
		side := decode[obj](t, call(t, api, "GET", "/config/"+key+"-lado", ""))[key+"-lado"]
		if fmt.Sprint(v) != fmt.Sprint(side) {
			t.Fatalf("try %d: %s=%v but %s-lado=%v", i, key, v, key, side)
		}
	}
}

// A transaction applies every operation at one revision, reads included; one
// whose condition fails writes nothing, and names every failed condition.
func TestATransactionIsAllOrNothing(t *testing.T) {
	limite := decode[obj](t, call(t, api, "PUT", "/config/tx-limite", `{"valor":100}`))
	rev := num(limite, "revisao")
	call(t, api, "PUT", "/config/tx-antigo", `{"valor":"x"}`)
	call(t, api, "PUT", "/config/tx-ativo", `{"valor":true}`)
	call(t, api, "DELETE", "/config/tx-modo", "")

	w := call(t, api, "POST", "/transacao", fmt.Sprintf(`{
		"se": [{"chave":"tx-limite","revisao":%d}, {"chave":"tx-modo","existe":false}, {"chave":"tx-ativo","valor":true}],
		"entao": [{"definir":"tx-limite","valor":200}, {"apagar":"tx-antigo"}, {"ler":"tx-ativo"}, {"ler":"tx-modo"}]}`, rev))
	expect(t, w, 200)
	res := decode[obj](t, w)
	R := num(res, "revisao")
	results := res["resultados"].([]any)
	if len(results) != 4 || num(results[0].(obj), "revisao") != R || num(results[1].(obj), "revisao") != R ||
		results[2].(obj)["valor"] != true || results[3].(obj)["existe"] != false {
		t.Fatalf("results: %v", res)
	}
	for _, h := range []string{"tx-limite", "tx-antigo"} {
		hist := decode[[]obj](t, call(t, api, "GET", "/config/"+h+"/historico", ""))
		if num(hist[len(hist)-1], "revisao") != R {
			t.Fatalf("%s's last change not at %d: %v", h, R, hist)
		}
	}

	// Stale now: two conditions fail, nothing is written.
	w = call(t, api, "POST", "/transacao", fmt.Sprintf(`{
		"se": [{"chave":"tx-limite","revisao":%d}, {"chave":"tx-ativo","valor":true}, {"chave":"tx-antigo","existe":true}],
		"entao": [{"definir":"tx-novo","valor":1}, {"definir":"tx-ativo","valor":false}]}`, rev))
	expect(t, w, 409)
	failures := decode[obj](t, w)["falhas"].([]any)
	if len(failures) != 2 || num(failures[0].(obj), "indice") != 0 || num(failures[0].(obj), "revisao_atual") != R ||
		num(failures[1].(obj), "indice") != 2 || failures[1].(obj)["valor_atual"] != nil {
		t.Fatalf("failures: %v", failures)
	}
	// etcd's own view: nothing written.
	resp, err := st.Client().Get(context.Background(), "/config/app/tx-novo")
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("a failed transaction wrote tx-novo: %v %v", resp, err)
	}
	if resp, _ := st.Client().Get(context.Background(), "/config/app/tx-ativo"); string(resp.Kvs[0].Value) != "true" {
		t.Fatalf("a failed transaction changed tx-ativo: %s", resp.Kvs[0].Value)
	}
}

// Each bad condition or operation is named by its place.
func TestBadTransactionsNameEachPlace(t *testing.T) {
	many := make([]string, 129)
	for i := range many {
		many[i] = fmt.Sprintf(`{"definir":"k%d","valor":%d}`, i, i)
	}
	for _, tc := range []struct{ body, campo string }{
		{`{"entao":[` + strings.Join(many, ",") + `]}`, "entao"},
		{`{"entao":[]}`, "entao"},
		{`{"se":[]}`, "entao"},
		{`{"entao":[{"definir":"a","valor":1},{"apagar":"a"}]}`, "entao[1].chave"},
		{`{"entao":[{"definir":"a"}]}`, "entao[0].valor"},
		{`{"entao":[{"ler":"a"},{"definir":"b","apagar":"c"}]}`, "entao[1]"},
		{`{"entao":[{"trocar":"a"}]}`, "entao[0]"},
		{`{"entao":[{"ler":"../x"}]}`, "entao[0].chave"},
		{`{"entao":[{"ler":7}]}`, "entao[0].chave"},
		{`{"se":[{"chave":"a"}],"entao":[{"ler":"a"}]}`, "se[0]"},
		{`{"se":[{"chave":"a","revisao":1,"existe":true}],"entao":[{"ler":"a"}]}`, "se[0]"},
		{`{"se":[{"chave":"a","revisao":-1}],"entao":[{"ler":"a"}]}`, "se[0].revisao"},
		{`{"se":[{"chave":"a","revisao":null}],"entao":[{"ler":"a"}]}`, "se[0].revisao"},
		{`{"se":[{"chave":"a","existe":null}],"entao":[{"ler":"a"}]}`, "se[0].existe"},
		{`{"se":[{"chave":"a","existe":"sim"}],"entao":[{"ler":"a"}]}`, "se[0].existe"},
		{`{"se":[{"revisao":1}],"entao":[{"ler":"a"}]}`, "se[0].chave"},
		{`{"entao":[{"ler":"a"}],"guarda":{"lock":"x"}}`, "guarda"},
	} {
		w := call(t, api, "POST", "/transacao", tc.body)
		expect(t, w, 400)
		campos, _ := decode[obj](t, w)["campos"].(obj)
		if _, ok := campos[tc.campo]; !ok {
			t.Errorf("%.80s: campos %v lacks %s", tc.body, campos, tc.campo)
		}
	}
}

// A transaction takes its guard in the body (or the header).
func TestAGuardedTransactionOfAFormerHolderIsRefused(t *testing.T) {
	_, a := acquire(t, "tx-guarda", `{"holder":"A","ttl":30}`)
	tokenA := num(a, "token")
	body := fmt.Sprintf(`{"entao":[{"definir":"tx-guardado","valor":"A"}],"guarda":{"lock":"tx-guarda","token":%d}}`, tokenA)
	expect(t, call(t, api, "POST", "/transacao", body), 200)
	call(t, api, "DELETE", "/lock/tx-guarda", "") // forced: A no longer holds
	_, b := acquire(t, "tx-guarda", `{"holder":"B","ttl":30}`)
	defer call(t, api, "DELETE", "/lock/tx-guarda", "")
	expectStale(t, call(t, api, "POST", "/transacao", body), num(b, "token"))
	expectStale(t, call(t, api, "POST", "/transacao", `{"entao":[{"definir":"tx-guardado","valor":"A"}]}`, "Etcdapi-Guarda", guarded("lock", "tx-guarda", tokenA)), num(b, "token"))
	resp, err := st.Client().Get(context.Background(), "/config/app/tx-guardado", clientv3.WithRev(0))
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Version != 1 {
		t.Fatalf("the refused transaction wrote: %v %v", resp, err)
	}
}
