package server

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func register(t testing.TB, body string) obj {
	t.Helper()
	w := call(t, api, "POST", "/servicos/registrar", body)
	expect(t, w, 201)
	return decode[obj](t, w)
}

func TestRegisterListHeartbeatAndDeregister(t *testing.T) {
	got := register(t, `{"nome":"api-pagamentos","endpoint":"http://localhost:8080","ttl":60,"metadados":{"versao":"1.2","zona":"a"}}`)
	id := got["id"].(string)
	if got["mensagem"] != "Serviço registrado" || got["chave"] != "/services/api-pagamentos/"+id || fmt.Sprint(got["ttl"]) != "60" {
		t.Fatalf("register: %v", got)
	}
	list := decode[[]obj](t, call(t, api, "GET", "/servicos/api-pagamentos", ""))
	if len(list) != 1 {
		t.Fatalf("instances: %v", list)
	}
	inst := list[0]
	if inst["id"] != id || inst["endpoint"] != "http://localhost:8080" || inst["status"] != "active" || inst["registrado_em"] == nil || fmt.Sprint(inst["ttl"]) != "60" || inst["metadados"].(obj)["zona"] != "a" {
		t.Fatalf("instance: %v", inst)
	}
	if left := fmt.Sprint(inst["ttl_restante"]); left != "60" && left != "59" {
		t.Fatalf("ttl_restante %s", left)
	}
	w := call(t, api, "POST", "/servicos/api-pagamentos/"+id+"/heartbeat", "")
	expect(t, w, 200)
	if fmt.Sprint(decode[obj](t, w)["ttl_restante"]) != "60" {
		t.Fatalf("heartbeat: %s", w.Body)
	}
	if all := decode[[]obj](t, call(t, api, "GET", "/servicos", "")); !strings.Contains(fmt.Sprint(all), "nome:api-pagamentos") {
		t.Fatalf("GET /servicos: %v", all)
	}
	expect(t, call(t, api, "DELETE", "/servicos/api-pagamentos/"+id, ""), 200)
	expect(t, call(t, api, "DELETE", "/servicos/api-pagamentos/"+id, ""), 404)
	expect(t, call(t, api, "POST", "/servicos/api-pagamentos/"+id+"/heartbeat", ""), 404)
	if list := decode[[]obj](t, call(t, api, "GET", "/servicos/api-pagamentos", "")); len(list) != 0 {
		t.Fatalf("after deregister: %v", list)
	}
	if body := call(t, api, "GET", "/servicos/nenhum", "").Body.String(); body != "[]\n" {
		t.Fatalf("unknown service: %s", body)
	}
	if countKeys(t, "/services/api-pagamentos/") != 0 {
		t.Fatal("instance key left in etcd")
	}
}

func TestRegisterUsesTheDefaultTTL(t *testing.T) {
	got := register(t, `{"nome":"api-usuarios","endpoint":"http://localhost:5001"}`)
	if fmt.Sprint(got["ttl"]) != "30" {
		t.Fatalf("default TTL: %v", got)
	}
}

func TestRegisterBadInput(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{"endpoint":"http://a:1"}`, "nome"},
		{`{"nome":"a"}`, "endpoint"},
		{`{"nome":"a","endpoint":"localhost:8080"}`, "endpoint"},
		{`{"nome":"a","endpoint":"/relativo"}`, "endpoint"},
		{`{"nome":"a","endpoint":"ftp://x"}`, "endpoint"},
		{`{"nome":"a","endpoint":"http://a:1","ttl":0}`, "ttl"},
		{`{"nome":"a","endpoint":"http://a:1","ttl":4}`, "ttl"},
		{`{"nome":"a","endpoint":"http://a:1","ttl":3601}`, "ttl"},
		{`{"nome":"a","endpoint":"http://a:1","ttl":"abc"}`, "ttl"},
		{`{"nome":"a/b","endpoint":"http://a:1"}`, "nome"},
		{`{"nome":"..","endpoint":"http://a:1"}`, "nome"},
		{`{"nome":"a","endpoint":"http://a:1","metadados":[1]}`, "metadados"},
		{`{"nome":"registrar","endpoint":"http://a:1"}`, "nome"}, // the route's name: GET could not list it
	} {
		w := call(t, api, "POST", "/servicos/registrar", tc.body)
		expect(t, w, 400)
		if campos, _ := decode[obj](t, w)["campos"].(obj); campos[tc.field] == nil {
			t.Errorf("%s: campos %v lacks %s", tc.body, campos, tc.field)
		}
	}
	expect(t, call(t, api, "POST", "/servicos/registrar", `[]`), 400)
	expect(t, call(t, api, "POST", "/servicos/registrar", ``), 400)
	expect(t, call(t, api, "GET", "/servicos/a%2F..", ""), 400)
	if w := call(t, api, "GET", "/servicos/registrar", ""); w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET /servicos/registrar: %d Allow %q, want 405 Allow POST", w.Code, w.Header().Get("Allow"))
	}
	if countKeys(t, "/services/a/") != 0 || countKeys(t, "/services/registrar/") != 0 {
		t.Fatal("bad input registered an instance")
	}
}

// An instance another client wrote as service "registrar" is not listed: the
// dashboard reads each listed service, and that one answers 405.
func TestAForeignServiceNamedLikeTheRouteIsNotListed(t *testing.T) {
	for _, name := range []string{"registrar", "vizinho"} { // the other one is listed
		if _, err := st.Client().Put(t.Context(), "/services/"+name+"/x", `{"id":"x","endpoint":"http://a:1","status":"active"}`); err != nil {
			t.Fatal(err)
		}
		defer st.Client().Delete(t.Context(), "/services/"+name+"/x")
	}
	var names []any
	for _, sc := range decode[[]obj](t, call(t, api, "GET", "/servicos", "")) {
		names = append(names, sc["nome"])
	}
	if slices.Contains(names, "registrar") || !slices.Contains(names, any("vizinho")) {
		t.Fatalf("GET /servicos lists %v: want vizinho, and not registrar, which GET /servicos/registrar cannot read", names)
	}
}

func TestInstanceExpiresWithoutHeartbeatAndLivesWithThem(t *testing.T) {
	t.Parallel()
	gone := register(t, `{"nome":"expira","endpoint":"http://a:1","ttl":5}`)
	kept := register(t, `{"nome":"vivo","endpoint":"http://a:1","ttl":5}`)
	began := time.Now()
	for time.Since(began) < 15*time.Second {
		time.Sleep(2 * time.Second)
		expect(t, call(t, api, "POST", "/servicos/vivo/"+kept["id"].(string)+"/heartbeat", ""), 200)
		if time.Since(began) > 6*time.Second && len(decode[[]obj](t, call(t, api, "GET", "/servicos/expira", ""))) != 0 {
			t.Fatalf("instance with TTL 5 still listed after %s", time.Since(began))
		}
	}
	if list := decode[[]obj](t, call(t, api, "GET", "/servicos/vivo", "")); len(list) != 1 {
		t.Fatalf("instance with heartbeats lost: %v", list)
	}
	expect(t, call(t, api, "POST", "/servicos/expira/"+gone["id"].(string)+"/heartbeat", ""), 404)
}

func TestListingManyInstancesAsksForTheirTTLsAtOnce(t *testing.T) {
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { register(t, `{"nome":"muitos","endpoint":"http://a:1","ttl":60}`) })
	}
	wg.Wait()
	list := decode[[]obj](t, call(t, api, "GET", "/servicos/muitos", ""))
	if len(list) != 100 {
		t.Fatalf("%d instances", len(list))
	}
	for _, inst := range list {
		if fmt.Sprint(inst["ttl_restante"]) == "0" {
			t.Fatalf("instance without ttl_restante: %v", inst)
		}
	}
}
