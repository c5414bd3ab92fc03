package server

import (
	"context"
	"fmt"
	"testing"
)

func TestConfigValuesKeepTheirJSONType(t *testing.T) {
	for _, v := range []string{`"100"`, `100`, `3.25`, `true`, `null`, `{"a":[1,"x",null]}`, `[]`, `"São Paulo"`} {
		w := call(t, api, "PUT", "/config/tipo", `{"valor": `+v+`}`)
		expect(t, w, 200)
		got := decode[obj](t, w)
		if got["mensagem"] != "Configuração atualizada" || got["chave"] != "tipo" || got["revisao"] == nil {
			t.Fatalf("answer: %v", got)
		}
		w = call(t, api, "GET", "/config/tipo", "")
		expect(t, w, 200)
		if want := `{"tipo":` + v + "}\n"; w.Body.String() != want {
			t.Fatalf("GET %s, want %s", w.Body, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	expect(t, call(t, api, "GET", "/config/nunca-definida", ""), 404)
	if got := decode[obj](t, call(t, api, "GET", "/config/nunca-definida", "")); got["erro"] != "Configuração não encontrada" {
		t.Fatalf("404 body: %v", got)
	}
	expect(t, call(t, api, "PUT", "/config/x", `{"value": 1}`), 400)
	expect(t, call(t, api, "PUT", "/config/x", `[1]`), 400)
	expect(t, call(t, api, "PUT", "/config/x", `{"valor": }`), 400)
	expect(t, call(t, api, "DELETE", "/config/nunca-definida", ""), 404)
	expect(t, call(t, api, "GET", "/config/nunca-definida/historico", ""), 404)
}

func TestListAndDeleteConfig(t *testing.T) {
	call(t, api, "PUT", "/config/lista-a", `{"valor": 1}`)
	call(t, api, "PUT", "/config/lista-b", `{"valor": "b"}`)
	all := decode[obj](t, call(t, api, "GET", "/config", ""))
	if fmt.Sprint(all["lista-a"]) != "1" || all["lista-b"] != "b" {
		t.Fatalf("GET /config: %v", all)
	}
	expect(t, call(t, api, "DELETE", "/config/lista-a", ""), 200)
	expect(t, call(t, api, "GET", "/config/lista-a", ""), 404)
	if countKeys(t, "/config/app/lista-a") != 0 {
		t.Fatal("key left in etcd")
	}
}

func TestConfigHistoryKeepsEveryChangeEvenAfterDelete(t *testing.T) {
	call(t, api, "PUT", "/config/hist", `{"valor": 1}`)
	call(t, api, "PUT", "/config/hist", `{"valor": "dois"}`)
	call(t, api, "DELETE", "/config/hist", "")
	call(t, api, "PUT", "/config/hist", `{"valor": [3]}`)
	call(t, api, "DELETE", "/config/hist", "")
	w := call(t, api, "GET", "/config/hist/historico", "")
	expect(t, w, 200)
	h := decode[[]obj](t, w)
	want := []string{"put 1", "put dois", "delete <nil>", "put [3]", "delete <nil>"}
	if len(h) != len(want) {
		t.Fatalf("history %v", h)
	}
	var last int64
	for i, e := range h {
		if got := fmt.Sprint(e["tipo"], " ", e["valor"]); got != want[i] {
			t.Fatalf("history[%d] = %s, want %s", i, got, want[i])
		}
		rev, _ := e["revisao"].(interface{ Int64() (int64, error) }).Int64()
		if rev <= last {
			t.Fatalf("revisions not increasing: %v", h)
		}
		last = rev
	}
}

func TestConfigHistoryAfterCompactionStartsWithTheKeptValue(t *testing.T) {
	st, api := ownMember(t)
	call(t, api, "PUT", "/config/hist-compact", `{"valor": "velho"}`)
	call(t, api, "PUT", "/config/hist-compact", `{"valor": "atual"}`)
	resp, _ := st.Client().Put(context.Background(), "/config/app/outra", `0`)
	if _, err := st.Client().Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	h := decode[[]obj](t, call(t, api, "GET", "/config/hist-compact/historico", ""))
	if len(h) != 1 || h[0]["valor"] != "atual" {
		t.Fatalf("history after compaction: %v", h)
	}
	call(t, api, "PUT", "/config/hist-compact", `{"valor": "novo"}`)
	h = decode[[]obj](t, call(t, api, "GET", "/config/hist-compact/historico", ""))
	if len(h) != 2 || h[1]["valor"] != "novo" {
		t.Fatalf("history after compaction and a put: %v", h)
	}
}
