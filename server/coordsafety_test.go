package server

import (
	"fmt"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// placeLost is the answer to a waiter whose place in line was removed.
const placeLost = "Seu lugar na fila foi removido enquanto aguardava (a chave foi apagada ou o lease acabou): peça de novo"

// TestWaiterWhoseKeyWasDeletedIsNeverServed: a waiter of a lock, an election
// or a semaphore whose key is deleted by hand (etcdctl del), or whose key's
// lease (the one its name gives) is revoked, while it waits is never made
// holder or leader when what it waited for comes free (etcd#11456): it is told
// its place was removed (409), and nobody holds it then. (A waiter whose
// key's lease ends: TestAWaiterWhoseLeaseIsLostHearsItAtOnce.)
func TestWaiterWhoseKeyWasDeletedIsNeverServed(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	ctx := t.Context()
	for _, remove := range []struct {
		how string
		do  func(key string) error
	}{
		{"deleted", func(key string) error { _, err := st.Client().Delete(ctx, key); return err }},
		{"its named lease revoked", func(key string) error {
			id, err := strconv.ParseInt(key[strings.LastIndex(key, "/")+1:], 16, 64)
			if err == nil {
				_, err = st.Client().Revoke(ctx, clientv3.LeaseID(id))
			}
			return err
		}},
	} {
		for _, p := range primitives("lugar-apagado") {
			held, waiter, key := p.holderAndWaiter(t, srv, fmt.Sprintf(p.body, "dono", 0), "apagado")
			if err := remove.do(string(key.Key)); err != nil {
				t.Fatal(err)
			}
			expect(t, call(t, api, "DELETE", p.release+token(held), ""), 200)
			if r := <-waiter; r.err != nil || r.code != 409 || r.body["erro"] != placeLost {
				t.Fatalf("%s waiter, key %s: %d %v %v", p.name, remove.how, r.code, r.body, r.err)
			}
			if n := countKeys(t, p.keys); n != 0 {
				t.Fatalf("%s, key %s: %d keys under %s, want none: the waiter holds it", p.name, remove.how, n, p.keys)
			}
			expect(t, call(t, api, "GET", strings.TrimSuffix(p.acquire, "/candidatar"), ""), 404)
		}
	}
}

// TestRefusalsTellWhereTheWaiterStood: a lock waiter or a candidate whose
// aguardar runs out while another waits behind it stood first in line
// (posicao 1: those behind do not count). A request that does not wait is
// refused without writing anything: a lock's without a posicao (as the
// original answered), a candidate's with the place it would have taken.
func TestRefusalsTellWhereTheWaiterStood(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, p := range primitives("onde-estava")[:2] {
		held := decode[obj](t, call(t, api, "POST", p.acquire, fmt.Sprintf(p.body, "dono", 0)))
		first := async(srv.Client(), "POST", srv.URL+p.acquire, fmt.Sprintf(p.body, "primeiro", 2))
		await(t, p.name+": the first waiter in line", func() bool { return countKeys(t, p.waitering) == p.inLine(1) })
		second := async(srv.Client(), "POST", srv.URL+p.acquire, fmt.Sprintf(p.body, "segundo", 30))
		await(t, p.name+": the second waiter in line", func() bool { return countKeys(t, p.waitering) == p.inLine(2) })
		r := <-first
		if r.err != nil || r.code != 409 || num(r.body, "posicao") != 1 || r.body[map[string]string{"lock": "holder", "eleicao": "lider"}[p.name]] != "dono" {
			t.Fatalf("%s: the first waiter out of time: %d %v %v, want 409 naming dono with posicao 1", p.name, r.code, r.body, r.err)
		}
		// A request that does not wait, while dono holds and segundo waits.
		before := revision(t)
		w := call(t, api, "POST", p.acquire, fmt.Sprintf(p.body, "apressado", 0))
		got := decode[obj](t, w)
		if p.name == "lock" {
			if _, ok := got["posicao"]; w.Code != 409 || ok || got["holder"] != "dono" {
				t.Fatalf("a lock request that does not wait: %d %v, want 409 naming dono without a posicao", w.Code, got)
			}
		} else if w.Code != 409 || num(got, "posicao") != 2 || got["lider"] != "dono" {
			t.Fatalf("a candidate that does not wait: %d %v, want 409 naming dono with posicao 2 (behind segundo)", w.Code, got)
		}
		if after := revision(t); after != before {
			t.Fatalf("%s: a refused request that does not wait wrote to etcd: revision %d, then %d", p.name, before, after)
		}
		served := p.handOver(t, held, second)
		expect(t, call(t, api, "DELETE", p.release+token(served), ""), 200)
	}
}

// revision is etcd's current revision.
func revision(t testing.TB) int64 {
	resp, err := st.Client().Get(t.Context(), "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// TestAWaitersTokenHoldsNothing: the create revision of a waiter's key (read
// from etcd, as any client can) is not a holder's token: renewing or releasing
// with it is 409, and the waiter stays in line and is served after the holder.
func TestAWaitersTokenHoldsNothing(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, p := range primitives("fila-sem-poder") {
		held, waiter, key := p.holderAndWaiter(t, srv, fmt.Sprintf(p.body, "dono", 0), "na-fila")
		waiting := fmt.Sprint(key.CreateRevision)
		route := strings.TrimSuffix(p.acquire, "/candidatar")
		expect(t, call(t, api, "POST", route+"/renovar", `{"token":`+waiting+`}`), 409)
		expect(t, call(t, api, "DELETE", p.release+waiting, ""), 409)
		if n := countKeys(t, p.waitering); n != p.inLine(1) {
			t.Fatalf("%s: %d keys in line after the waiter's token was used, want %d", p.name, n, p.inLine(1))
		}
		served := p.handOver(t, held, waiter)
		expect(t, call(t, api, "DELETE", p.release+token(served), ""), 200)
	}
}

// TestAServedWaiterKeepsNoStandIn: a waiter joins bound to a short stand-in
// lease; once served, that lease is gone at once (not left to expire), and
// what it holds is bound to its own lease alone.
func TestAServedWaiterKeepsNoStandIn(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, p := range primitives("sem-substituto") {
		held, waiter, key := p.holderAndWaiter(t, srv, fmt.Sprintf(p.body, "dono", 0), "esperando")
		standIn := clientv3.LeaseID(key.Lease)
		served := p.handOver(t, held, waiter)
		if ttl, err := st.Client().TimeToLive(t.Context(), standIn); err != nil || ttl.TTL != -1 {
			t.Fatalf("%s: the served waiter's stand-in lease %x: %v %v, want it gone", p.name, standIn, ttl, err)
		}
		// What it holds is bound to the lease its waiting key was named by.
		own, _ := strconv.ParseInt(path.Base(string(key.Key)), 16, 64)
		holding, err := st.Client().Get(t.Context(), p.keys, clientv3.WithPrefix())
		if err != nil || len(holding.Kvs) != 1 || holding.Kvs[0].Lease != own {
			t.Fatalf("%s: what the served waiter holds: %v %v, want one key on lease %x", p.name, holding.Kvs, err, own)
		}
		expect(t, call(t, api, "DELETE", p.release+token(served), ""), 200)
	}
}
