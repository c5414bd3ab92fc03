package server

import (
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func lockQueueLen(t testing.TB, resource string) int64 {
	return countKeys(t, "/locks-fila/"+resource+"/")
}

// TestFairLockServesWaitersInArrivalOrder: 10 waiters that arrive one after
// another get the lock in that order, with increasing tokens.
func TestFairLockServesWaitersInArrivalOrder(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	_, held := acquire(t, "fila-justa", `{"holder":"dono","ttl":30}`)
	const waiters = 10
	var (
		mu     sync.Mutex
		order  []int
		tokens []int64
		wg     sync.WaitGroup
	)
	for i := range waiters {
		wg.Go(func() {
			code, got, err := sendJSON(srv.Client(), "POST", srv.URL+"/lock/fila-justa", fmt.Sprintf(`{"holder":"w%d","ttl":30,"aguardar":30}`, i))
			if err != nil || code != 200 {
				t.Errorf("waiter %d: %d %v %v", i, code, got, err)
				return
			}
			mu.Lock()
			order, tokens = append(order, i), append(tokens, num(got, "token"))
			mu.Unlock()
			if code, got, err := sendJSON(srv.Client(), "DELETE", fmt.Sprintf("%s/lock/fila-justa?token=%d", srv.URL, num(got, "token")), ""); err != nil || code != 200 {
				t.Errorf("release by waiter %d: %d %v %v", i, code, got, err)
			}
		})
		// The next one arrives once this one stands in line.
		await(t, fmt.Sprintf("waiter %d in line", i), func() bool { return lockQueueLen(t, "fila-justa") == int64(i+1) })
	}
	if l := decode[obj](t, call(t, api, "GET", "/lock/fila-justa", "")); num(l, "fila") != waiters {
		t.Fatalf("GET lock: fila %v, want %d", l["fila"], waiters)
	}
	expect(t, call(t, api, "DELETE", "/lock/fila-justa?token="+token(held), ""), 200)
	wg.Wait()
	for i, w := range order {
		if w != i || (i > 0 && tokens[i] <= tokens[i-1]) {
			t.Fatalf("served in order %v with tokens %v, want arrival order and increasing tokens", order, tokens)
		}
	}
	if len(order) != waiters {
		t.Fatalf("%d of %d waiters got the lock", len(order), waiters)
	}
	if n := lockQueueLen(t, "fila-justa"); n != 0 {
		t.Fatalf("%d waiters left in line", n)
	}
}

// TestFairLockNoWaitDoesNotJumpTheLine: while anyone waits in line, a request
// that will not wait is refused even in the instant the lock is free.
func TestFairLockNoWaitDoesNotJumpTheLine(t *testing.T) {
	ctx := t.Context()
	lease, err := st.Client().Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Client().Revoke(ctx, lease.ID)
	// A waiter in line, the lock free: the instant between a release and the hand-over.
	if _, err := st.Client().Put(ctx, fmt.Sprintf("/locks-fila/furar/%x", int64(lease.ID)), `{"holder":"na-fila"}`, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	code, got := acquire(t, "furar", `{"holder":"apressado"}`)
	if code != 409 || got["holder"] != "na-fila" {
		t.Fatalf("a request that does not wait jumped the line, or was not told who is next: %d %v", code, got)
	}
	if countKeys(t, "/locks/furar") != 0 {
		t.Fatal("the lock was taken past the line")
	}
	st.Client().Revoke(ctx, lease.ID)
	code, got = acquire(t, "furar", `{"holder":"apressado"}`)
	if code != 200 {
		t.Fatalf("nobody in line: %d %v", code, got)
	}
	expect(t, call(t, api, "DELETE", "/lock/furar?token="+token(got), ""), 200)
}

// TestFairLockWaiterThatGivesUpLeavesTheLine: a waiter out of time answers 409
// with the holder and where it stood, and its place is gone at once.
func TestFairLockWaiterThatGivesUpLeavesTheLine(t *testing.T) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	_, held := acquire(t, "desistir", `{"holder":"dono","ttl":30}`)
	patient := async(srv.Client(), "POST", srv.URL+"/lock/desistir", `{"holder":"paciente","aguardar":30}`)
	await(t, "the patient waiter in line", func() bool { return lockQueueLen(t, "desistir") == 1 })
	code, got := acquire(t, "desistir", `{"holder":"apressado","aguardar":0.3}`)
	if code != 409 || got["holder"] != "dono" || num(got, "posicao") != 2 {
		t.Fatalf("waiter out of time: %d %v, want 409 with holder dono and posicao 2", code, got)
	}
	if n := lockQueueLen(t, "desistir"); n != 1 {
		t.Fatalf("%d in line after one gave up, want 1", n)
	}
	expect(t, call(t, api, "DELETE", "/lock/desistir?token="+token(held), ""), 200)
	if r := got200(t, patient); r.body["holder"] != "paciente" {
		t.Fatalf("the patient waiter: %v", r.body)
	}
	if n := lockQueueLen(t, "desistir"); n != 0 {
		t.Fatalf("%d in line, want none", n)
	}
	call(t, api, "DELETE", "/lock/desistir", "")
}
