package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"etcdapi/internal/testenv"
	"etcdapi/store"
)

// Other etcd clients write under etcdapi's prefixes (that is why the layout is
// kept). Whatever they write, every read route answers valid JSON, never a
// 500: config values that are not JSON come back as strings; users, instances
// and locks that cannot be read are left out of lists, with one warning each
// listing, and get a JSON error on their own route.
func TestForeignValuesNeverBreakAnAnswer(t *testing.T) {
	var logged testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	own, err := store.Open(context.Background(), testenv.StoreConfig(), log) // its own member: the garbage stays here
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	h := New(own, testConfig(), log)
	cli := own.Client()
	ctx := context.Background()

	// What etcdapi writes itself.
	w := call(t, h, "POST", "/usuarios", `{"nome":"Ana Lixeira","email":"ana@exemplo.com"}`)
	expect(t, w, 201)
	ana := decode[obj](t, w)["id"].(string)
	expect(t, call(t, h, "PUT", "/config/boa", `{"valor":{"a":1}}`), 200)
	expect(t, call(t, h, "POST", "/servicos/registrar", `{"nome":"svc","endpoint":"http://localhost:1"}`), 201)
	expect(t, call(t, h, "POST", "/lock/bom", `{"holder":"eu"}`), 200)

	// What an etcdctl user may write.
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []string{`lixo{`, ``, `"texto"`, `[1,2]`, `42`, `null`, `{"nome":"meio`, "\xff\xfe"}
	put := func(key, val string, opts ...clientv3.OpOption) {
		t.Helper()
		if _, err := cli.Put(ctx, key, val, opts...); err != nil {
			t.Fatal(err)
		}
	}
	for i, g := range garbage {
		put(fmt.Sprintf("/users/lixo%d", i), g)
		put(fmt.Sprintf("/config/app/lixo%d", i), g)
		put(fmt.Sprintf("/services/svc/lixo%d", i), g)
		put(fmt.Sprintf("/locks/lixo%d", i), g, clientv3.WithLease(lease.ID))
	}
	const stamps = `"criado_em":"2026-01-01T00:00:00Z","atualizado_em":"2026-01-01T00:00:00Z"`
	put("/users/a/b", `{"_id":"a/b","nome":"Ana com barra",`+stamps+`}`)                                                                        // a key that is no identifier
	put("/users/zzz", `{"_id":"zzz","nome":"Ana Zeta",`+stamps+`}`)                                                                             // readable, though not written by etcdapi
	put("/services/svc/semlease", `{"id":"semlease","endpoint":"http://x:1","status":"active","registrado_em":"2026-01-01T00:00:00Z","ttl":5}`) // an instance without a lease
	put("/locks/semlease", `{"holder":"etcdctl"}`)                                                                                              // a lock without a lease
	put("/indices/email/ana@exemplo.com", `lixo`)

	for _, path := range []string{
		"/usuarios", "/usuarios?limite=2", "/usuarios/buscar?nome=ana", "/usuarios/buscar?nome=lixo", "/usuarios/lixo0", "/usuarios/" + ana,
		"/config", "/config/lixo0", "/config/lixo1", "/config/lixo7", "/config/lixo0/historico",
		"/servicos", "/servicos/svc", "/lock", "/lock/lixo0", "/lock/lixo2", "/lock/semlease", "/cluster",
	} {
		w := call(t, h, "GET", path, "")
		if w.Code >= 500 || !json.Valid(w.Body.Bytes()) {
			t.Errorf("GET %s: %d %q", path, w.Code, w.Body)
		}
	}

	// Lists hold what is readable, and nothing else.
	users := decode[[]obj](t, call(t, h, "GET", "/usuarios", ""))
	if len(users) != 3 {
		t.Errorf("GET /usuarios: %d users, want 3 (Ana, a/b, zzz): %v", len(users), users)
	}
	var paged []obj
	for next := "/usuarios?limite=2"; next != ""; {
		w := call(t, h, "GET", next, "")
		expect(t, w, 200)
		paged = append(paged, decode[[]obj](t, w)...)
		next, _, _ = strings.Cut(strings.TrimPrefix(w.Header().Get("Link"), "<"), ">")
	}
	if len(paged) != 3 {
		t.Errorf("paged listing: %d users, want 3: %v", len(paged), paged)
	}
	if found := decode[[]obj](t, call(t, h, "GET", "/usuarios/buscar?nome=ana", "")); len(found) != 3 {
		t.Errorf("search: %v", found)
	}
	if found := decode[[]obj](t, call(t, h, "GET", "/usuarios/buscar?nome=meio", "")); len(found) != 0 {
		t.Errorf("search found a broken document: %v", found)
	}
	if got := decode[obj](t, call(t, h, "GET", "/config/lixo0", "")); got["lixo0"] != "lixo{" {
		t.Errorf("GET /config/lixo0: %v", got)
	}
	all := decode[obj](t, call(t, h, "GET", "/config", ""))
	if all["lixo1"] != "" || all["lixo2"] != "texto" || fmt.Sprint(all["boa"]) != "map[a:1]" {
		t.Errorf("GET /config: %v", all)
	}
	if hist := decode[[]obj](t, call(t, h, "GET", "/config/lixo7/historico", "")); len(hist) != 1 || hist[0]["valor"] != "\ufffd\ufffd" {
		t.Errorf("history of a foreign value: %v", hist)
	}
	instances := decode[[]obj](t, call(t, h, "GET", "/servicos/svc", ""))
	if len(instances) != 2 {
		t.Errorf("GET /servicos/svc: want the registered instance and the lease-less one: %v", instances)
	}
	if svcs := decode[[]obj](t, call(t, h, "GET", "/servicos", "")); len(svcs) != 1 || fmt.Sprint(svcs[0]["instancias"]) != "2" {
		t.Errorf("GET /servicos: %v", svcs)
	}
	locks := decode[[]obj](t, call(t, h, "GET", "/lock", ""))
	if len(locks) != 2 {
		t.Errorf("GET /lock: want the lock taken through the API and the lease-less one: %v", locks)
	}

	// One warning per listing that left something out.
	before := strings.Count(logged.String(), "level=WARN")
	call(t, h, "GET", "/usuarios", "")
	call(t, h, "GET", "/servicos/svc", "")
	call(t, h, "GET", "/lock", "")
	if n := strings.Count(logged.String(), "level=WARN") - before; n != 3 {
		t.Errorf("%d warnings for three listings:\n%s", n, logged.String())
	}

	// Their own routes answer a JSON error, and writes repair or remove them.
	expect(t, call(t, h, "GET", "/usuarios/lixo0", ""), 422)
	expect(t, call(t, h, "GET", "/lock/lixo0", ""), 422)
	expect(t, call(t, h, "PATCH", "/usuarios/lixo1", `{"nome":"Remendo"}`), 422)
	expect(t, call(t, h, "PUT", "/usuarios/lixo1", `{"nome":"Consertado"}`), 200)
	expect(t, call(t, h, "DELETE", "/usuarios/lixo2", ""), 200)
	expect(t, call(t, h, "POST", "/usuarios", `{"nome":"Outra","email":"ana@exemplo.com"}`), 409)
	expect(t, call(t, h, "POST", "/lock/lixo3", `{"holder":"eu"}`), 409)
	expect(t, call(t, h, "DELETE", "/lock/lixo3", ""), 200)
	if w := call(t, h, "POST", "/servicos/svc/lixo0/heartbeat", ""); w.Code >= 500 || !json.Valid(w.Body.Bytes()) {
		t.Errorf("heartbeat of a foreign instance: %d %s", w.Code, w.Body)
	}

	// Every prefix's event stream carries them as valid JSON.
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, prefix := range []string{"/users/", "/config/app/", "/services/", "/locks/"} {
		s := openStream(t, srv.Client(), srv.URL+"/eventos?desde=1&prefixo="+prefix)
		for range len(garbage) {
			ev, err := s.next()
			if err != nil || ev.Data == nil {
				t.Fatalf("%s: %v %v", prefix, ev, err)
			}
		}
		s.Close()
	}
}

// A service instance without a lease (written by another client) is deleted
// all the same: the key itself goes, not only its lease.
func TestDeregisterDeletesAnInstanceWithoutALease(t *testing.T) {
	ctx := context.Background()
	key := "/services/semlease/x1"
	if _, err := st.Client().Put(ctx, key, `{"id":"x1","endpoint":"http://x:1","ttl":5}`); err != nil {
		t.Fatal(err)
	}
	expect(t, call(t, api, "DELETE", "/servicos/semlease/x1", ""), 200)
	if resp, err := st.Client().Get(ctx, key); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the key is still there: %v %v", resp.Kvs, err)
	}
	expect(t, call(t, api, "DELETE", "/servicos/semlease/x1", ""), 404)

	// With a lease, the lease goes too.
	w := call(t, api, "POST", "/servicos/registrar", `{"nome":"comlease","endpoint":"http://x:1"}`)
	expect(t, w, 201)
	id := decode[obj](t, w)["id"].(string)
	resp, err := st.Client().Get(ctx, "/services/comlease/"+id)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatal(resp, err)
	}
	expect(t, call(t, api, "DELETE", "/servicos/comlease/"+id, ""), 200)
	if ttl, err := st.Client().TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err == nil && ttl.TTL > 0 {
		t.Fatalf("the instance's lease lives on: %v", ttl)
	}
}

// A Go program's concurrency.Session holds a lock, a semaphore place, a
// leadership and a key of its own on its one lease. Releasing the lock (with
// its token, or by force), the place or the leadership removes that key alone:
// the session's other keys and its lease live on. Even a place whose value is
// exactly what etcdapi writes.
func TestReleaseLeavesAForeignSessionAlone(t *testing.T) {
	ctx := t.Context()
	cli := st.Client()
	session, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	lease := session.Lease()
	put := func(key, val string) int64 {
		t.Helper()
		resp, err := cli.Put(ctx, key, val, clientv3.WithLease(lease))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	put("/outro/chave", "do programa")
	for _, tc := range []struct{ key, val, release string }{
		{"/locks/sessao-forcado", `{"holder":"programa-go"}`, "/lock/sessao-forcado"},
		{"/locks/sessao-token", `{"holder":"programa-go"}`, "/lock/sessao-token?token=%d"},
		{fmt.Sprintf("/semaphores/sessao/%x", int64(lease)), `{"holder":"programa-go","limite":2,"ttl":30}`, "/semaforo/sessao?token=%d"},
		{fmt.Sprintf("/election/sessao/%x", int64(lease)), `{"candidato":"programa-go","valor":null}`, "/eleicao/sessao?token=%d"},
	} {
		rev := put(tc.key, tc.val)
		release := tc.release
		if strings.Contains(release, "%d") {
			release = fmt.Sprintf(release, rev)
		}
		expect(t, call(t, api, "DELETE", release, ""), 200)
		if n := countKeys(t, tc.key); n != 0 {
			t.Errorf("DELETE %s left %s", release, tc.key)
		}
		if n := countKeys(t, "/outro/chave"); n != 1 {
			t.Fatalf("DELETE %s removed the session's other key", release)
		}
		if ttl, err := cli.TimeToLive(ctx, lease); err != nil || ttl.TTL <= 0 {
			t.Fatalf("DELETE %s ended the session's lease: %v %v", release, ttl, err)
		}
	}
	select {
	case <-session.Done():
		t.Fatal("the session ended")
	default:
	}
}
