package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestSemaphoreNeverHasMoreHoldersThanItsLimit has 30 HTTP clients contend for
// a semaphore of limit 2. Inside, each checks with the semaphore that its
// token is one of the holders' (the fencing check a protected resource
// makes), and counts who is inside at the same time: never more than 2, and
// every client gets in once.
func TestSemaphoreNeverHasMoreHoldersThanItsLimit(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	const clients, limit = 30, 2
	var (
		inside, most atomic.Int64
		mu           sync.Mutex
		tokens       []int64
		wg           sync.WaitGroup
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for i := range clients {
		wg.Go(func() {
			code, got, err := sendJSON(client, "POST", srv.URL+"/semaforo/vagas", fmt.Sprintf(`{"holder":"c%d","limite":%d,"ttl":30,"aguardar":60}`, i, limit))
			if err != nil || code != 200 {
				t.Errorf("client %d: %d %v %v", i, code, got, err)
				return
			}
			tok := num(got, "token")
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			// The resource checks the token against the semaphore before it lets the holder in.
			code, sem, err := sendJSON(client, "GET", srv.URL+"/semaforo/vagas", "")
			holders, _ := sem["ocupantes"].([]any)
			fenced := slices.ContainsFunc(holders, func(h any) bool { return num(h.(obj), "token") == tok })
			// (Not len(holders) > limit: the listing never shows more than the
			// limit. Inside too early, a client's token is not among them.)
			if err != nil || code != 200 || !fenced {
				t.Errorf("client %d with token %d is not among the holders %v (%d %v)", i, tok, sem, code, err)
			}
			time.Sleep(5 * time.Millisecond) // a slow critical section
			inside.Add(-1)
			mu.Lock()
			tokens = append(tokens, tok)
			mu.Unlock()
			if code, got, err := sendJSON(client, "DELETE", fmt.Sprintf("%s/semaforo/vagas?token=%d", srv.URL, tok), ""); err != nil || code != 200 {
				t.Errorf("release of token %d: %d %v %v", tok, code, got, err)
			}
		})
	}
	wg.Wait()
	if most.Load() > limit {
		t.Fatalf("%d holders inside at once, limit %d", most.Load(), limit)
	}
	if len(tokens) != clients {
		t.Fatalf("%d of %d clients got in", len(tokens), clients)
	}
	slices.Sort(tokens)
	if len(slices.Compact(tokens)) != clients {
		t.Fatalf("a token was given twice: %v", tokens)
	}
	if n := countKeys(t, "/semaphores/vagas/"); n != 0 {
		t.Fatalf("%d keys left", n)
	}
}

func TestSemaphoreHoldersRenewReleaseAndLimit(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	expect(t, call(t, api, "GET", "/semaforo/cota", ""), 404)
	w := call(t, api, "POST", "/semaforo/cota", `{"holder":"a","limite":2}`)
	expect(t, w, 200)
	a := decode[obj](t, w)
	if a["mensagem"] != "Vaga obtida" || a["semaforo"] != "cota" || a["holder"] != "a" || num(a, "limite") != 2 || num(a, "ttl") != 30 || a["expira_em"] == nil {
		t.Fatalf("first holder: %v", a)
	}
	b := decode[obj](t, call(t, api, "POST", "/semaforo/cota", `{"holder":"b","limite":2}`))
	if num(b, "token") <= num(a, "token") {
		t.Fatalf("tokens do not increase: %v then %v", a["token"], b["token"])
	}
	// Another limit than the holders' is bad input.
	w = call(t, api, "POST", "/semaforo/cota", `{"holder":"c","limite":3}`)
	expect(t, w, 400)
	if campos, _ := decode[obj](t, w)["campos"].(obj); campos["limite"] == nil {
		t.Fatalf("limit mismatch: %s", w.Body)
	}
	// Full: 409 with the holders, and a waiter that gives up leaves nothing behind.
	w = call(t, api, "POST", "/semaforo/cota", `{"holder":"c","limite":2,"aguardar":0.2}`)
	expect(t, w, 409)
	if got := decode[obj](t, w); got["erro"] != "Sem vagas" || len(got["ocupantes"].([]any)) != 2 {
		t.Fatalf("full: %v", got)
	}
	if n := countKeys(t, "/semaphores/cota/"); n != 2 {
		t.Fatalf("%d keys, want the 2 holders'", n)
	}
	waiter := async(srv.Client(), "POST", srv.URL+"/semaforo/cota", `{"holder":"c","limite":2,"aguardar":30}`)
	await(t, "c in line", func() bool { return countKeys(t, "/semaphores/cota/") == 3 })
	sem := decode[obj](t, call(t, api, "GET", "/semaforo/cota", ""))
	if num(sem, "limite") != 2 || num(sem, "fila") != 1 || len(sem["ocupantes"].([]any)) != 2 {
		t.Fatalf("GET semaphore: %v", sem)
	}
	if list := decode[[]obj](t, call(t, api, "GET", "/semaforo", "")); !slices.ContainsFunc(list, func(s obj) bool { return s["semaforo"] == "cota" }) {
		t.Fatalf("GET /semaforo: %v", list)
	}
	// Renew and release by token; a foreign token does neither.
	expect(t, call(t, api, "POST", "/semaforo/cota/renovar", `{"token":1}`), 409)
	expect(t, call(t, api, "DELETE", "/semaforo/cota?token=1", ""), 409)
	if got := decode[obj](t, call(t, api, "POST", "/semaforo/cota/renovar", `{"token":`+token(a)+`}`)); num(got, "ttl_restante") < 29 {
		t.Fatalf("renew: %v", got)
	}
	expect(t, call(t, api, "DELETE", "/semaforo/cota?token="+token(a), ""), 200)
	c := got200(t, waiter).body
	if c["holder"] != "c" || num(c, "token") <= num(b, "token") {
		t.Fatalf("waiter after a release: %v", c)
	}
	expect(t, call(t, api, "DELETE", "/semaforo/cota?token="+token(a), ""), 409)
	expect(t, call(t, api, "DELETE", "/semaforo/cota?token="+token(b), ""), 200)
	expect(t, call(t, api, "DELETE", "/semaforo/cota?token="+token(c), ""), 200)
	expect(t, call(t, api, "POST", "/semaforo/cota/renovar", `{"token":`+token(c)+`}`), 404)
	expect(t, call(t, api, "GET", "/semaforo/cota", ""), 404)
}

// A key written by another client without a readable limite does not decide
// the limit: the holders' limits do, whoever wrote them, and another is 400.
func TestSemaphoreLimitIsTheHoldersPastAnUnreadableKey(t *testing.T) {
	ctx := t.Context()
	lease, err := st.Client().Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Client().Revoke(ctx, lease.ID)
	if _, err := st.Client().Put(ctx, fmt.Sprintf("/semaphores/mistura/%x", int64(lease.ID)), "programa-go", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	a := decode[obj](t, call(t, api, "POST", "/semaforo/mistura", `{"holder":"a","limite":3}`))
	w := call(t, api, "POST", "/semaforo/mistura", `{"holder":"b","limite":4}`)
	expect(t, w, 400)
	if campos, _ := decode[obj](t, w)["campos"].(obj); campos["limite"] != "deve ser 3, o limite usado pelos ocupantes atuais" {
		t.Fatalf("limit mismatch behind an unreadable key: %s", w.Body)
	}
	if n := countKeys(t, "/semaphores/mistura/"); n != 2 {
		t.Fatalf("%d keys, want the foreign one and a's", n)
	}
	if sem := decode[obj](t, call(t, api, "GET", "/semaforo/mistura", "")); num(sem, "limite") != 3 || len(sem["ocupantes"].([]any)) != 2 || num(sem, "fila") != 0 {
		t.Fatalf("GET: %v, want limit 3 held by the foreign key and a", sem)
	}
	expect(t, call(t, api, "DELETE", "/semaforo/mistura?token="+token(a), ""), 200)
}
