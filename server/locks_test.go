package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func acquire(t testing.TB, resource, body string) (int, obj) {
	t.Helper()
	w := call(t, api, "POST", "/lock/"+resource, body)
	return w.Code, decode[obj](t, w)
}

func token(o obj) string { return fmt.Sprint(o["token"]) }

func TestLockAcquireConflictAndReleaseWithToken(t *testing.T) {
	code, got := acquire(t, "recurso-critico", `{"holder":"worker-1"}`)
	if code != 200 || got["mensagem"] != "Lock adquirido" || got["holder"] != "worker-1" || got["recurso"] != "recurso-critico" || got["expira_em"] == nil || fmt.Sprint(got["ttl"]) != "30" {
		t.Fatalf("acquire: %d %v", code, got)
	}
	code, conflict := acquire(t, "recurso-critico", `{"holder":"worker-2"}`)
	if code != 409 || conflict["erro"] != "Recurso já bloqueado" || conflict["holder"] != "worker-1" {
		t.Fatalf("conflict: %d %v", code, conflict)
	}
	held := decode[obj](t, call(t, api, "GET", "/lock/recurso-critico", ""))
	if held["holder"] != "worker-1" || token(held) != token(got) || held["ttl_restante"] == nil {
		t.Fatalf("GET lock: %v", held)
	}
	if list := decode[[]obj](t, call(t, api, "GET", "/lock", "")); len(list) == 0 {
		t.Fatal("GET /lock lists nothing")
	}
	// A foreign token neither renews nor releases.
	expect(t, call(t, api, "POST", "/lock/recurso-critico/renovar", `{"token":1}`), 409)
	expect(t, call(t, api, "DELETE", "/lock/recurso-critico?token=1", ""), 409)
	expect(t, call(t, api, "DELETE", "/lock/recurso-critico", `{"token":1}`), 409)
	w := call(t, api, "POST", "/lock/recurso-critico/renovar", `{"token":`+token(got)+`}`)
	expect(t, w, 200)
	w = call(t, api, "DELETE", "/lock/recurso-critico?token="+token(got), "")
	expect(t, w, 200)
	if r := decode[obj](t, w); r["mensagem"] != "Lock liberado" || r["forcado"] != false {
		t.Fatalf("release: %v", r)
	}
	expect(t, call(t, api, "GET", "/lock/recurso-critico", ""), 404)
	expect(t, call(t, api, "DELETE", "/lock/recurso-critico", ""), 404)
	// The old token stays stale once someone else holds the lock.
	_, next := acquire(t, "recurso-critico", `{}`)
	if next["holder"] != "unknown" {
		t.Fatalf("default holder: %v", next)
	}
	if token(next) <= token(got) && len(token(next)) <= len(token(got)) {
		t.Fatalf("token did not increase: %s then %s", token(got), token(next))
	}
	expect(t, call(t, api, "DELETE", "/lock/recurso-critico?token="+token(got), ""), 409)
	expect(t, call(t, api, "POST", "/lock/recurso-critico/renovar", `{"token":`+token(got)+`}`), 409)
	if countKeys(t, "/locks/recurso-critico") != 1 {
		t.Fatal("a stale token released the lock")
	}
	// Forced release, as the original's DELETE without a token.
	w = call(t, api, "DELETE", "/lock/recurso-critico", "")
	expect(t, w, 200)
	if decode[obj](t, w)["forcado"] != true {
		t.Fatalf("forced release: %s", w.Body)
	}
	expect(t, call(t, api, "POST", "/lock/recurso-critico/renovar", `{"token":`+token(next)+`}`), 404)
}

func TestLockBadInput(t *testing.T) {
	for _, tc := range []struct{ path, body, field string }{
		{"/lock/x", `{"ttl":0}`, "ttl"},
		{"/lock/x", `{"ttl":4}`, "ttl"},
		{"/lock/x", `{"ttl":3601}`, "ttl"},
		{"/lock/x", `{"ttl":"abc"}`, "ttl"},
		{"/lock/x", `{"aguardar":61}`, "aguardar"},
		{"/lock/x", `{"aguardar":-1}`, "aguardar"},
		{"/lock/x", `{"holder":5}`, "holder"},
		{"/lock/x/renovar", `{}`, "token"},
		{"/lock/x/renovar", `{"token":"abc"}`, "token"},
	} {
		w := call(t, api, "POST", tc.path, tc.body)
		expect(t, w, 400)
		if campos, _ := decode[obj](t, w)["campos"].(obj); campos[tc.field] == nil {
			t.Errorf("%s %s: campos %v lacks %s", tc.path, tc.body, campos, tc.field)
		}
	}
	expect(t, call(t, api, "POST", "/lock/x", `[1]`), 400)
	expect(t, call(t, api, "POST", "/lock/x", `null`), 400)
	expect(t, call(t, api, "DELETE", "/lock/x?token=abc", ""), 400)
	expect(t, call(t, api, "DELETE", "/lock/x", `{"token":-3}`), 400)
	for _, bad := range []string{"..", "a%2Fb", "a%20b", strings.Repeat("r", 129)} {
		expect(t, call(t, api, "POST", "/lock/"+bad, `{}`), 400)
		expect(t, call(t, api, "DELETE", "/lock/"+bad, ""), 400)
	}
	if countKeys(t, "/locks/x") != 0 {
		t.Fatal("bad input took the lock")
	}
}

func TestLockExpiresWithoutRenewalAndLivesWithIt(t *testing.T) {
	t.Parallel()
	_, gone := acquire(t, "expira", `{"holder":"a","ttl":5}`)
	_, kept := acquire(t, "renovado", `{"holder":"b","ttl":5}`)
	began := time.Now()
	for time.Since(began) < 15*time.Second {
		time.Sleep(2 * time.Second)
		expect(t, call(t, api, "POST", "/lock/renovado/renovar", `{"token":`+token(kept)+`}`), 200)
		if time.Since(began) > 6*time.Second && countKeys(t, "/locks/expira") != 0 {
			t.Fatalf("lock with TTL 5 still held after %s", time.Since(began))
		}
	}
	if held := decode[obj](t, call(t, api, "GET", "/lock/renovado", "")); held["holder"] != "b" {
		t.Fatalf("renewed lock lost after 3 TTLs: %v", held)
	}
	expect(t, call(t, api, "GET", "/lock/expira", ""), 404)
	expect(t, call(t, api, "POST", "/lock/expira/renovar", `{"token":`+token(gone)+`}`), 404)
}

func TestWaiterGetsTheLockSoonAfterRelease(t *testing.T) {
	t.Parallel()
	_, held := acquire(t, "espera", `{"holder":"primeiro","ttl":30}`)
	got := make(chan time.Time, 1)
	go func() {
		code, w := acquire(t, "espera", `{"holder":"segundo","aguardar":10}`)
		if code != 200 || w["holder"] != "segundo" {
			t.Errorf("waiter: %d %v", code, w)
		}
		got <- time.Now()
	}()
	time.Sleep(500 * time.Millisecond)
	released := time.Now()
	expect(t, call(t, api, "DELETE", "/lock/espera?token="+token(held), ""), 200)
	if d := (<-got).Sub(released); d > 200*time.Millisecond {
		t.Fatalf("waiter got the lock %s after the release", d)
	}

	// A holder that vanishes: the waiter gets the lock when its TTL runs out.
	acquire(t, "espera-ttl", `{"holder":"sumiu","ttl":5}`)
	began := time.Now()
	code, w := acquire(t, "espera-ttl", `{"holder":"paciente","aguardar":20}`)
	if code != 200 || time.Since(began) > 6*time.Second {
		t.Fatalf("waiter after expiry: %d %v after %s", code, w, time.Since(began))
	}
	// Time runs out: 409 with the holder.
	began = time.Now()
	code, w = acquire(t, "espera-ttl", `{"holder":"apressado","aguardar":0.5}`)
	if code != 409 || w["holder"] != "paciente" || time.Since(began) < 500*time.Millisecond {
		t.Fatalf("waiter out of time: %d %v after %s", code, w, time.Since(began))
	}
}

func TestWaiterThatDisconnectsLeavesNothingBehind(t *testing.T) {
	acquire(t, "desiste", `{"holder":"dono","ttl":30}`)
	srv := httptest.NewServer(api)
	defer srv.Close()
	leasesBefore := countLeases(t)
	client := &http.Client{Timeout: 300 * time.Millisecond}
	_, err := client.Post(srv.URL+"/lock/desiste", "application/json", strings.NewReader(`{"holder":"impaciente","aguardar":30}`))
	if err == nil {
		t.Fatal("the waiter answered before its client left")
	}
	deadline := time.Now().Add(3 * time.Second)
	for countLeases(t) > leasesBefore && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := countLeases(t); n > leasesBefore {
		t.Fatalf("the waiter's lease outlived its client: %d leases, %d before", n, leasesBefore)
	}
}

func countLeases(t testing.TB) int {
	resp, err := st.Client().Leases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Leases)
}

// TestLockMutualExclusion has 50 clients contend over HTTP for one lock: no two
// holders overlap, tokens strictly increase, and every acquisition is released.
func TestLockMutualExclusion(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	const clients, total = 50, 500
	type hold struct {
		token      int64
		start, end time.Time
	}
	var (
		mu       sync.Mutex
		holds    []hold
		acquired atomic.Int64
		wg       sync.WaitGroup
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for i := range clients {
		wg.Go(func() {
			for acquired.Load() < total {
				resp, err := client.Post(srv.URL+"/lock/mutex", "application/json", strings.NewReader(fmt.Sprintf(`{"holder":"c%d","ttl":30,"aguardar":30}`, i)))
				if err != nil {
					t.Error(err)
					return
				}
				var got struct{ Token int64 }
				json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("acquire: %d", resp.StatusCode)
					return
				}
				h := hold{token: got.Token, start: time.Now()}
				acquired.Add(1)
				h.end = time.Now()
				req, _ := http.NewRequest("DELETE", fmt.Sprintf("%s/lock/mutex?token=%d", srv.URL, got.Token), nil)
				resp, err = client.Do(req)
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("release of token %d: %v %v", got.Token, resp.StatusCode, err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				holds = append(holds, h)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(holds) < total {
		t.Fatalf("%d acquisitions, want at least %d", len(holds), total)
	}
	sort.Slice(holds, func(i, j int) bool { return holds[i].token < holds[j].token })
	for i := 1; i < len(holds); i++ {
		if holds[i].token == holds[i-1].token {
			t.Fatalf("token %d given twice", holds[i].token)
		}
		if holds[i].start.Before(holds[i-1].end) {
			t.Fatalf("holders overlap: token %d began %s before token %d ended", holds[i].token, holds[i-1].end.Sub(holds[i].start), holds[i-1].token)
		}
	}
}

func TestWaiterLongerThanItsTTLStillGetsTheLock(t *testing.T) {
	t.Parallel()
	_, held := acquire(t, "espera-longa", `{"holder":"lento","ttl":30}`)
	go func() {
		time.Sleep(7 * time.Second)
		call(t, api, "DELETE", "/lock/espera-longa?token="+token(held), "")
	}()
	code, got := acquire(t, "espera-longa", `{"holder":"curto","ttl":5,"aguardar":15}`)
	if code != 200 || got["holder"] != "curto" {
		t.Fatalf("a waiter with TTL 5 after 7 s: %d %v", code, got)
	}
	if l := decode[obj](t, call(t, api, "GET", "/lock/espera-longa", "")); fmt.Sprint(l["ttl_restante"]) < "4" {
		t.Fatalf("the lock starts with %v s left, want its whole TTL", l["ttl_restante"])
	}
}
