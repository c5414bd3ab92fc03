package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"etcdapi/internal/testenv"
)

func acquire(t testing.TB, resource, body string) (int, obj) {
	t.Helper()
	w := call(t, api, "POST", "/lock/"+resource, body)
	return w.Code, decode[obj](t, w)
}

func token(o obj) string { return fmt.Sprint(o["token"]) }

// tokenNum is a fencing token as the number it is ("100" > "99").
func tokenNum(t testing.TB, o obj) int64 {
	t.Helper()
	n, err := strconv.ParseInt(token(o), 10, 64)
	if err != nil {
		t.Fatalf("token %v is not an integer: %v", o["token"], err)
	}
	return n
}

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
	if tokenNum(t, next) <= tokenNum(t, got) {
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
		// No t.Fatal from this goroutine: decode by hand.
		w := call(t, api, "POST", "/lock/espera", `{"holder":"segundo","aguardar":10}`)
		var body obj
		if err := json.Unmarshal(w.Body.Bytes(), &body); w.Code != 200 || err != nil || body["holder"] != "segundo" {
			t.Errorf("waiter: %d %s", w.Code, w.Body)
		}
		got <- time.Now()
	}()
	await(t, "the waiter in line", func() bool { return countKeys(t, "/locks-fila/espera/") == 1 })
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

// fencedResource is what a lock protects: a counter changed by a slow
// read-modify-write that, as a fenced storage service would, rejects a token
// lower than the highest it has seen. Overlapping holders or a stale token
// show up as violations, and as lost updates in the counter.
type fencedResource struct {
	mu         sync.Mutex // guards the fields, not the read-modify-write
	value      int
	highest    int64
	inside     atomic.Int32
	violations []string
}

func (r *fencedResource) update(token int64) {
	if n := r.inside.Add(1); n != 1 {
		r.violate(fmt.Sprintf("token %d entered while %d other holder(s) were inside", token, n-1))
	}
	defer r.inside.Add(-1)
	r.mu.Lock()
	if token < r.highest {
		r.mu.Unlock()
		r.violate(fmt.Sprintf("stale token %d after %d", token, r.highest))
		return
	}
	r.highest = token
	v := r.value
	r.mu.Unlock()
	time.Sleep(200 * time.Microsecond) // the slow part of the read-modify-write
	r.mu.Lock()
	r.value = v + 1
	r.mu.Unlock()
}

func (r *fencedResource) violate(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.violations = append(r.violations, msg)
}

// contend has clients workers take the lock named by lockPath(worker) over
// HTTP, update the resource while holding it, and release it, until total
// acquisitions; it returns the resource and the number of acquisitions.
func contend(t *testing.T, h http.Handler, clients, total int, lockPath func(worker int) string) (*fencedResource, int) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	res := new(fencedResource)
	var (
		acquired atomic.Int64
		errs     = make(chan error, clients)
		wg       sync.WaitGroup
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for i := range clients {
		wg.Go(func() {
			for acquired.Load() < int64(total) {
				path := srv.URL + lockPath(i)
				resp, err := client.Post(path, "application/json", strings.NewReader(fmt.Sprintf(`{"holder":"c%d","ttl":30,"aguardar":30}`, i)))
				if err != nil {
					errs <- err
					return
				}
				var got struct{ Token int64 }
				json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if resp.StatusCode != 200 || got.Token <= 0 {
					errs <- fmt.Errorf("acquire: %d", resp.StatusCode)
					return
				}
				acquired.Add(1)
				res.update(got.Token)
				req, _ := http.NewRequest("DELETE", fmt.Sprintf("%s?token=%d", path, got.Token), nil)
				resp, err = client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("release of token %d: %d", got.Token, resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return res, int(acquired.Load())
}

// TestLockMutualExclusion has 50 clients contend over HTTP for one lock, each
// doing a slow read-modify-write on a fenced resource while it holds it: no
// two holders are ever inside together, no token is stale, no update is lost.
func TestLockMutualExclusion(t *testing.T) {
	res, n := contend(t, api, 50, 500, func(int) string { return "/lock/mutex" })
	if n < 500 {
		t.Fatalf("%d acquisitions, want at least 500", n)
	}
	if len(res.violations) > 0 || res.value != n {
		t.Fatalf("%d acquisitions, counter %d, violations: %v", n, res.value, res.violations[:min(len(res.violations), 5)])
	}
}

// The same check against a broken acquire (each worker locks a key of its own,
// as a lock keyed by the wrong name would) must see the violations: the test
// above can fail.
func TestLockMutualExclusionCatchesABrokenAcquire(t *testing.T) {
	res, n := contend(t, api, 20, 100, func(i int) string { return fmt.Sprintf("/lock/quebrado-%d", i) })
	if len(res.violations) == 0 && res.value == n {
		t.Fatalf("%d acquisitions through a broken lock and no violation seen", n)
	}
	t.Logf("broken acquire: %d acquisitions, counter %d, %d violations, e.g. %v", n, res.value, len(res.violations), res.violations[:min(len(res.violations), 2)])
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
	l := decode[obj](t, call(t, api, "GET", "/lock/espera-longa", ""))
	if left, err := strconv.Atoi(fmt.Sprint(l["ttl_restante"])); err != nil || left < 4 {
		t.Fatalf("the lock starts with %v s left, want its whole TTL", l["ttl_restante"])
	}
}

// With ETCD_LISTEN_CLIENT_URLS=off the member has no client port; watches then
// go over a private unix socket, not the in-process client that deadlocks
// with many waiters: 50 waiters still share the lock correctly.
func TestLockMutualExclusionWithoutAClientPort(t *testing.T) {
	cfg := testenv.StoreConfig()
	cfg.ListenClientURLs.Decode("off")
	own := testenv.OpenStore(cfg)
	defer own.Close()
	if urls := own.ClientURLs(); len(urls) != 0 {
		t.Fatalf("off, yet client URLs %v", urls)
	}
	h := New(own, testConfig(), slog.New(slog.DiscardHandler))
	res, n := contend(t, h, 50, 500, func(int) string { return "/lock/mutex-off" })
	if n < 500 || len(res.violations) > 0 || res.value != n {
		t.Fatalf("%d acquisitions, counter %d, violations: %v", n, res.value, res.violations[:min(len(res.violations), 5)])
	}
}

// A waiter whose wait outlasts its own TTL is still served: its leases are
// kept alive while it waits, and once served its TTL starts afresh.
func TestWaiterOutlastingItsTTLIsServedWithAFreshTTL(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	code, first, err := sendJSON(http.DefaultClient, "POST", srv.URL+"/lock/paciente", `{"holder":"primeiro","ttl":30}`)
	if err != nil || code != 200 {
		t.Fatalf("first holder: %d %v %v", code, first, err)
	}
	waiter := async(http.DefaultClient, "POST", srv.URL+"/lock/paciente", `{"holder":"paciente","ttl":5,"aguardar":20}`)
	await(t, "the waiter in line", func() bool { return countKeys(t, "/locks-fila/paciente/") == 1 })
	time.Sleep(7 * time.Second) // the time under test: the waiter's 5 s TTL would run out, were it not renewed
	select {
	case a := <-waiter:
		t.Fatalf("the waiter answered while the lock was held: %d %v %v", a.code, a.body, a.err)
	default: // still in line
	}
	if n := countKeys(t, "/locks-fila/paciente/"); n != 1 {
		t.Fatalf("%d keys in line after 7 s, want the waiter's", n)
	}
	if code, got, err := sendJSON(http.DefaultClient, "DELETE", fmt.Sprintf("%s/lock/paciente?token=%d", srv.URL, num(first, "token")), ""); err != nil || code != 200 {
		t.Fatalf("release: %d %v %v", code, got, err)
	}
	a := <-waiter
	if a.err != nil || a.code != 200 || a.body["holder"] != "paciente" {
		t.Fatalf("the waiter after 7 s in line: %d %v %v, want the lock", a.code, a.body, a.err)
	}
	code, held, err := sendJSON(http.DefaultClient, "GET", srv.URL+"/lock/paciente", "")
	if err != nil || code != 200 || num(held, "token") != num(a.body, "token") || num(held, "ttl_restante") < 4 {
		t.Fatalf("the lock as served: %d %v %v, want the waiter's token with a fresh TTL of about 5 s", code, held, err)
	}
}
