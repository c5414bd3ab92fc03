package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdapi/store"
)

// slotResult is what a waiter's AcquireSlot came back with.
type slotResult struct {
	token int64
	err   error
}

// waitInLine puts n waiters in line for the semaphore one after another (each
// once the one before stands in line) and returns their answers' channels.
func waitInLine(t testing.TB, name string, n int, limit int64, wait time.Duration) []chan slotResult {
	t.Helper()
	done := make([]chan slotResult, n)
	for i := range done {
		done[i] = make(chan slotResult, 1)
		before := keysUnder(t, "/semaphores/"+name+"/")
		go func() {
			token, err := st.AcquireSlot(context.Background(), name, fmt.Sprint("w", i), limit, 30, wait)
			done[i] <- slotResult{token, err}
		}()
		for keysUnder(t, "/semaphores/"+name+"/") == before {
			time.Sleep(time.Millisecond)
		}
	}
	return done
}

func keysUnder(t testing.TB, prefix string) int64 {
	t.Helper()
	resp, err := st.Client().Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// TestSemaphoreWaitersWakeOnlyForPlacesAhead: 20 waiters of a semaphore of
// limit 3 are served in arrival order as holders release, whichever holder
// releases (the oldest, the newest, one between), and a release wakes at
// most limit waiters (those whose place it may free), not the whole line.
func TestSemaphoreWaitersWakeOnlyForPlacesAhead(t *testing.T) {
	const name, waiters, limit = "despertar", 20, 3
	ctx := context.Background()
	var holders []int64
	for i := range limit {
		token, err := st.AcquireSlot(ctx, name, fmt.Sprint("h", i), limit, 30, 0)
		if err != nil {
			t.Fatal(err)
		}
		holders = append(holders, token)
	}
	done := waitInLine(t, name, waiters, limit, 30*time.Second)
	before := store.WaiterEvents()
	for i := range waiters {
		which := i % limit // the oldest holder, then one between, then the newest
		if err := st.Release(ctx, "semaforo", name, holders[which]); err != nil {
			t.Fatal(err)
		}
		holders = slices.Delete(holders, which, which+1)
		select {
		case r := <-done[i]:
			if r.err != nil || r.token <= holders[len(holders)-1] {
				t.Fatalf("waiter %d: %+v, want a token above the holders' %v", i, r, holders)
			}
			holders = append(holders, r.token)
		case <-time.After(15 * time.Second):
			t.Fatalf("waiter %d not served 15 s after holder %d of %d released", i, which+1, limit)
		}
		for _, next := range done[i+1:] {
			select {
			case r := <-next:
				t.Fatalf("a waiter jumped the line: %+v, waiter %d just served", r, i)
			default:
			}
		}
	}
	events := store.WaiterEvents() - before
	for _, h := range holders {
		if err := st.Release(ctx, "semaforo", name, h); err != nil {
			t.Fatal(err)
		}
	}
	if events > waiters*limit {
		t.Fatalf("%d watch events for %d releases: more than %d waiters woke per release", events, waiters, limit)
	}
	t.Logf("%d watch events for %d releases", events, waiters)
}

// BenchmarkSemaphoreDrain: 200 waiters of a semaphore of limit 5, each
// releasing its place as soon as it gets it: the time from the holders'
// release until the last waiter is served, and the watch events waiters
// received meanwhile. Run: go test ./store -run '^$' -bench SemaphoreDrain -benchtime 3x
func BenchmarkSemaphoreDrain(b *testing.B) {
	const waiters, limit = 200, 5
	ctx := context.Background()
	var took time.Duration
	var events int64
	round := 0
	for b.Loop() {
		round++
		name := fmt.Sprint("escoar-", round)
		var holders []int64
		for i := range limit {
			token, err := st.AcquireSlot(ctx, name, fmt.Sprint("h", i), limit, 30, 0)
			if err != nil {
				b.Fatal(err)
			}
			holders = append(holders, token)
		}
		var wg sync.WaitGroup
		errs := make(chan error, waiters)
		for i := range waiters {
			wg.Go(func() {
				token, err := st.AcquireSlot(ctx, name, fmt.Sprint("w", i), limit, 30, 60*time.Second)
				if err == nil {
					err = st.Release(ctx, "semaforo", name, token)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		for keysUnder(b, "/semaphores/"+name+"/") < limit+waiters {
			time.Sleep(10 * time.Millisecond)
		}
		before, began := store.WaiterEvents(), time.Now()
		for _, h := range holders {
			if err := st.Release(ctx, "semaforo", name, h); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
		took += time.Since(began)
		events += store.WaiterEvents() - before
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(took.Milliseconds())/float64(round), "ms/drain")
	b.ReportMetric(float64(events)/float64(round), "events/drain")
}

// TestSemaphoreWaiterBehindAForeignKeyIsServed: a key another client wrote in
// line (a Go program's session key, named by its lease and bound to it) never
// moves when its turn comes, as an etcdapi waiter's does; the waiter behind it
// still gets its place as soon as the holders ahead let go.
func TestSemaphoreWaiterBehindAForeignKeyIsServed(t *testing.T) {
	const name, limit = "estrangeiro", 2
	ctx := context.Background()
	var holders []int64
	for i := range limit {
		token, err := st.AcquireSlot(ctx, name, fmt.Sprint("h", i), limit, 30, 0)
		if err != nil {
			t.Fatal(err)
		}
		holders = append(holders, token)
	}
	lease, err := st.Client().Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Client().Revoke(ctx, lease.ID)
	if _, err := st.Client().Put(ctx, fmt.Sprintf("/semaphores/%s/%x", name, int64(lease.ID)), `{"holder":"programa-go","limite":2}`, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	done := waitInLine(t, name, 1, limit, 30*time.Second)
	for _, h := range holders {
		if err := st.Release(ctx, "semaforo", name, h); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-done[0]:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if err := st.Release(ctx, "semaforo", name, r.token); err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the waiter behind another client's key not served 15 s after the holders released")
	}
}

// TestTheNextLeaderIsNotWokenByThoseBehindIt: the candidate next in line
// watches the leader's key alone, so candidates that join behind it and give
// up wake nobody: no watch event reaches a waiter meanwhile.
func TestTheNextLeaderIsNotWokenByThoseBehindIt(t *testing.T) {
	const name = "sem-despertar"
	ctx := context.Background()
	leader, err := st.Campaign(ctx, name, "lider", nil, 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	next := make(chan slotResult, 1)
	go func() {
		token, err := st.Campaign(ctx, name, "proximo", nil, 30, 30*time.Second)
		next <- slotResult{token, err}
	}()
	for keysUnder(t, "/election/"+name+"/") != 2 {
		time.Sleep(time.Millisecond)
	}
	before := store.WaiterEvents()
	for i := range 10 {
		if _, err := st.Campaign(ctx, name, fmt.Sprint("impaciente", i), nil, 30, 20*time.Millisecond); !errors.Is(err, store.ErrOtherLeader) {
			t.Fatalf("candidate %d behind the next one: %v, want ErrOtherLeader", i, err)
		}
	}
	if events := store.WaiterEvents() - before; events != 0 {
		t.Fatalf("%d watch events reached waiters while 10 candidates joined and left behind the next leader, want 0", events)
	}
	if err := st.Release(ctx, "eleicao", name, leader); err != nil {
		t.Fatal(err)
	}
	r := <-next
	if r.err != nil || r.token <= leader {
		t.Fatalf("the next leader: %+v", r)
	}
	if err := st.Release(ctx, "eleicao", name, r.token); err != nil {
		t.Fatal(err)
	}
}

// TestListingsKeepInterleavedLines: places of two lines that arrive
// interleaved (A, B, A) are each listed under their own line, in order.
func TestListingsKeepInterleavedLines(t *testing.T) {
	ctx := context.Background()
	var tokens []int64
	for _, name := range []string{"intercalado-a", "intercalado-b", "intercalado-a"} {
		token, err := st.AcquireSlot(ctx, name, "h", 2, 30, 0)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, token)
	}
	all, err := st.Semaphores(ctx)
	if err != nil {
		t.Fatal(err)
	}
	holders := map[string][]int64{}
	for _, sem := range all {
		for _, h := range sem.Holders {
			holders[sem.Name] = append(holders[sem.Name], h.Token)
		}
	}
	if a, b := holders["intercalado-a"], holders["intercalado-b"]; !slices.Equal(a, []int64{tokens[0], tokens[2]}) || !slices.Equal(b, []int64{tokens[1]}) {
		t.Fatalf("listed holders %v, want intercalado-a %v and intercalado-b %v", holders, []int64{tokens[0], tokens[2]}, tokens[1:2])
	}
	for i, name := range []string{"intercalado-a", "intercalado-b", "intercalado-a"} {
		if err := st.Release(ctx, "semaforo", name, tokens[i]); err != nil {
			t.Fatal(err)
		}
	}
}
