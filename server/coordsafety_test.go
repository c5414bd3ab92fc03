package server

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// placeLost is the answer to a waiter whose place in line was removed.
const placeLost = "Seu lugar na fila foi removido enquanto aguardava (a chave foi apagada ou o lease acabou): peça de novo"

// TestWaiterWhoseKeyWasDeletedIsNeverServed: a waiter of a lock, an election
// or a semaphore whose key is deleted by hand (etcdctl del) while it waits is
// never made holder or leader when what it waited for comes free (etcd#11456):
// it is told its place was removed (409), and nobody holds it then. (A waiter
// whose lease ends: TestAWaiterWhoseLeaseIsLostHearsItAtOnce.)
func TestWaiterWhoseKeyWasDeletedIsNeverServed(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, p := range primitives("lugar-apagado") {
		held := decode[obj](t, call(t, api, "POST", p.acquire, fmt.Sprintf(p.body, "dono", 0)))
		waiter := async(srv.Client(), "POST", srv.URL+p.acquire, fmt.Sprintf(p.body, "apagado", 30))
		await(t, p.name+" waiter in line", func() bool { return countKeys(t, p.waitering) == p.inLine(1) })
		newest, err := st.Client().Get(t.Context(), p.waitering, clientv3.WithLastCreate()...)
		if err != nil || len(newest.Kvs) != 1 {
			t.Fatalf("the waiter's key: %v %v", newest, err)
		}
		if _, err := st.Client().Delete(t.Context(), string(newest.Kvs[0].Key)); err != nil {
			t.Fatal(err)
		}
		expect(t, call(t, api, "DELETE", p.release+token(held), ""), 200)
		if r := <-waiter; r.err != nil || r.code != 409 || r.body["erro"] != placeLost {
			t.Fatalf("%s waiter whose key was deleted: %d %v %v", p.name, r.code, r.body, r.err)
		}
		if n := countKeys(t, p.keys); n != 0 {
			t.Fatalf("%s: %d keys under %s, want none: the waiter holds it", p.name, n, p.keys)
		}
		expect(t, call(t, api, "GET", strings.TrimSuffix(p.acquire, "/candidatar"), ""), 404)
	}
}

// TestAWaitersTokenHoldsNothing: the create revision of a waiter's key (read
// from etcd, as any client can) is not a holder's token: renewing or releasing
// with it is 409, and the waiter stays in line and is served after the holder.
func TestAWaitersTokenHoldsNothing(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, p := range primitives("fila-sem-poder") {
		held := decode[obj](t, call(t, api, "POST", p.acquire, fmt.Sprintf(p.body, "dono", 0)))
		waiter := async(srv.Client(), "POST", srv.URL+p.acquire, fmt.Sprintf(p.body, "na-fila", 30))
		await(t, p.name+" waiter in line", func() bool { return countKeys(t, p.waitering) == p.inLine(1) })
		newest, err := st.Client().Get(t.Context(), p.waitering, clientv3.WithLastCreate()...)
		if err != nil || len(newest.Kvs) != 1 {
			t.Fatalf("the waiter's key: %v %v", newest, err)
		}
		waiting := fmt.Sprint(newest.Kvs[0].CreateRevision)
		route := strings.TrimSuffix(p.acquire, "/candidatar")
		expect(t, call(t, api, "POST", route+"/renovar", `{"token":`+waiting+`}`), 409)
		expect(t, call(t, api, "DELETE", p.release+waiting, ""), 409)
		if n := countKeys(t, p.waitering); n != p.inLine(1) {
			t.Fatalf("%s: %d keys in line after the waiter's token was used, want %d", p.name, n, p.inLine(1))
		}
		expect(t, call(t, api, "DELETE", p.release+token(held), ""), 200)
		if r := <-waiter; r.err != nil || r.code != 200 {
			t.Fatalf("%s waiter: %d %v %v", p.name, r.code, r.body, r.err)
		} else {
			expect(t, call(t, api, "DELETE", p.release+token(r.body), ""), 200)
		}
	}
}
