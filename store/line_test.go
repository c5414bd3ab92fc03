package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
		awaitKeys(t, "/semaphores/"+name+"/", before+1)
	}
	return done
}

// holdPlaces takes all limit places of a semaphore and returns their tokens.
func holdPlaces(tb testing.TB, name string, limit int64) []int64 {
	tb.Helper()
	var tokens []int64
	for i := range limit {
		token, err := st.AcquireSlot(context.Background(), name, fmt.Sprint("h", i), limit, 30, 0)
		if err != nil {
			tb.Fatal(err)
		}
		tokens = append(tokens, token)
	}
	return tokens
}

// release lets go of each token's place in the line of kind called name.
func release(tb testing.TB, kind, name string, tokens ...int64) {
	tb.Helper()
	for _, token := range tokens {
		if err := st.Release(context.Background(), kind, name, token); err != nil {
			tb.Fatal(err)
		}
	}
}

// awaitKeys waits until n keys are under prefix (15 s at most).
func awaitKeys(t testing.TB, prefix string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); keysUnder(t, prefix) != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d keys under %s, want %d", keysUnder(t, prefix), prefix, n)
		}
	}
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
	holders := holdPlaces(t, name, limit)
	done := waitInLine(t, name, waiters, limit, 30*time.Second)
	before := store.WaiterEvents()
	for i := range waiters {
		which := i % limit // the oldest holder, then one between, then the newest
		release(t, "semaforo", name, holders[which])
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
	release(t, "semaforo", name, holders...)
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
		holders := holdPlaces(b, name, limit)
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
		release(b, "semaforo", name, holders...)
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
// line never moves when its turn comes, as an etcdapi waiter's does (it moves
// to the lease that names it). Whether it is named by its own lease (a Go
// program's session key) or named like a lease it is not bound to, the waiter
// just behind it is not fooled into watching it alone: it gets its place as
// soon as the holders ahead let go (one key ahead, limit 2).
func TestSemaphoreWaiterBehindAForeignKeyIsServed(t *testing.T) {
	const limit = 2
	ctx := context.Background()
	for _, named := range []string{"by its lease", "like another lease"} {
		name := "estrangeiro-" + strings.ReplaceAll(named, " ", "-")
		holders := holdPlaces(t, name, limit)
		lease, err := st.Client().Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("/semaphores/%s/%x", name, int64(lease.ID))
		if named == "like another lease" {
			key = "/semaphores/" + name + "/abc"
		}
		if _, err := st.Client().Put(ctx, key, `{"holder":"programa-go","limite":2}`, clientv3.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
		done := waitInLine(t, name, 1, limit, 30*time.Second)
		release(t, "semaforo", name, holders...)
		select {
		case r := <-done[0]:
			if r.err != nil {
				t.Fatalf("behind a key named %s: %v", named, r.err)
			}
			release(t, "semaforo", name, r.token)
		case <-time.After(15 * time.Second):
			t.Fatalf("the waiter behind another client's key named %s not served 15 s after the holders released", named)
		}
		st.Client().Revoke(ctx, lease.ID)
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
	awaitKeys(t, "/election/"+name+"/", 2)
	before := store.WaiterEvents()
	for i := range 10 {
		if _, err := st.Campaign(ctx, name, fmt.Sprint("impaciente", i), nil, 30, 20*time.Millisecond); !errors.Is(err, store.ErrOtherLeader) {
			t.Fatalf("candidate %d behind the next one: %v, want ErrOtherLeader", i, err)
		}
	}
	if events := store.WaiterEvents() - before; events != 0 {
		t.Fatalf("%d watch events reached waiters while 10 candidates joined and left behind the next leader, want 0", events)
	}
	release(t, "eleicao", name, leader)
	select {
	case r := <-next:
		if r.err != nil || r.token <= leader {
			t.Fatalf("the next leader: %+v", r)
		}
		release(t, "eleicao", name, r.token)
	case <-time.After(15 * time.Second):
		t.Fatal("the next candidate not leading 15 s after the leader resigned")
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
	release(t, "semaforo", "intercalado-a", tokens[0], tokens[2])
	release(t, "semaforo", "intercalado-b", tokens[1])
}

// A request with a wrong limite stands in line for a moment before it is
// refused; the limit in use stays the established holders' all the same: a
// request with theirs is never refused with ErrLimitMismatch meanwhile.
func TestALimitMismatchNeverCountsAsAHolder(t *testing.T) {
	const name = "limite-transitorio"
	ctx := context.Background()
	h, err := st.AcquireSlot(ctx, name, "h", 2, 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release(t, "semaforo", name, h)
	stop := time.Now().Add(5 * time.Second)
	var wrong, right, refused atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for time.Now().Before(stop) && wrong.Load() == 0 {
			tok, err := st.AcquireSlot(ctx, name, "errado", 1, 30, 0)
			var r *store.Refusal
			if !errors.As(err, &r) || !errors.Is(err, store.ErrLimitMismatch) || r.Limit != 2 {
				wrong.Store(-1) // a limit of 1 let in, or refused for another reason
				t.Logf("limite 1 while 2 is in use: token %d, %v", tok, err)
				return
			}
			refused.Add(1)
		}
	})
	wg.Go(func() {
		for time.Now().Before(stop) && wrong.Load() == 0 {
			tok, err := st.AcquireSlot(ctx, name, "certo", 2, 30, 0)
			var r *store.Refusal
			if err == nil {
				right.Add(1)
				st.Release(ctx, "semaforo", name, tok)
			} else if errors.As(err, &r) && errors.Is(err, store.ErrLimitMismatch) {
				wrong.Store(r.Limit)
			}
		}
	})
	wg.Wait()
	switch w := wrong.Load(); {
	case w == -1:
		t.Fatal("a request with limite 1 was not refused with ErrLimitMismatch naming limite 2")
	case w != 0:
		t.Fatalf("limite 2, the only holder's, refused: ErrLimitMismatch, limite %d in use", w)
	}
	if right.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("%d places with limite 2, %d refusals of limite 1: the race was never run", right.Load(), refused.Load())
	}
}

// Compaction up to the current revision (POST /cluster/manutencao, or an
// external cluster's revision-mode auto-compaction) never fails a waiter: its
// watch starting past the compaction wakes it to read its place again.
func TestWaitersOutliveACompactionToNow(t *testing.T) {
	ctx := context.Background()
	stop := time.Now().Add(3 * time.Second)
	var compacted, failed, grants, compactions atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { // a compaction every 50 ms (its pace, not a wait for anything)
		for time.Now().Before(stop) {
			if r, err := st.Client().Get(ctx, "/"); err == nil {
				if _, err := st.Client().Compact(ctx, r.Header.Revision); err == nil {
					compactions.Add(1)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	for g := range 8 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				tok, err := st.AcquireSlot(ctx, "compacto", fmt.Sprint(g), 2, 10, 2*time.Second)
				switch {
				case err == nil:
					grants.Add(1)
					st.Release(ctx, "semaforo", "compacto", tok)
				case errors.Is(err, store.ErrCompacted):
					if compacted.Add(1) == 1 {
						t.Logf("first: %v", err)
					}
				case !errors.As(err, new(*store.Refusal)): // a refusal is the end of a wait in vain
					if failed.Add(1) == 1 {
						t.Logf("first: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if compacted.Load() > 0 || failed.Load() > 0 {
		t.Fatalf("%d acquisitions (of %d granted) failed with ErrCompacted, %d otherwise", compacted.Load(), grants.Load(), failed.Load())
	}
	if compactions.Load() < 10 || grants.Load() < 10 {
		t.Fatalf("%d compactions while %d places were granted: the waiters were never put to the test", compactions.Load(), grants.Load())
	}
}

// A key below an election's line (/election/x/sub/1, another client's) stands
// in that line, as a join sees it: it is listed in election x, not in "x/sub".
func TestAForeignKeyBelowALineIsListedInIt(t *testing.T) {
	ctx := context.Background()
	lease, err := st.Client().Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Client().Revoke(ctx, lease.ID)
	if _, err := st.Client().Put(ctx, "/election/aninhada/sub/1", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	e, err := st.Leader(ctx, "aninhada")
	if err != nil || e.Name != "aninhada" || e.Leader != "1" {
		t.Fatalf("Leader(aninhada) = %+v %v, want election aninhada led by the key 1", e, err)
	}
}

// A lock held through a key without a lease (another client's) never expires:
// renewing it with its token answers its 0 seconds, as GetLock shows, not "free".
func TestALockWithoutALeaseRenewsAsHeld(t *testing.T) {
	ctx := context.Background()
	resp, err := st.Client().Put(ctx, "/locks/semlease", `{"holder":"x","ttl":5}`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Client().Delete(ctx, "/locks/semlease")
	l, gerr := st.GetLock(ctx, "semlease")
	if gerr != nil || l.Holder != "x" || l.Token != resp.Header.Revision || l.TTLLeft != 0 {
		t.Fatalf("GetLock: %+v, %v; want x holding with token %d and 0 seconds left", l, gerr, resp.Header.Revision)
	}
	if left, err := st.Renew(ctx, "lock", "semlease", resp.Header.Revision); err != nil || left != 0 {
		t.Fatalf("GetLock: %+v, %v; Renew with its token: %d %v, want 0 seconds left", l, gerr, left, err)
	}
}

// TestACancelledRequestLeavesNoLease: requests cancelled at any moment of their
// acquisition (their clients gone, a timeout) leave no lease behind, not even
// one etcd granted while the request was being cancelled.
func TestACancelledRequestLeavesNoLease(t *testing.T) {
	ctx := context.Background()
	held, err := st.AcquireLock(ctx, "cancelados", "dono", 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Client().Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		c, cancel := context.WithTimeout(ctx, time.Duration(i%30)*100*time.Microsecond) // 0 to 2.9 ms
		st.AcquireLock(c, "cancelados", "impaciente", 30, time.Second)
		cancel()
	}
	after, err := st.Client().Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// New leases, not a count: an earlier test's may expire meanwhile.
	var left []clientv3.LeaseStatus
	for _, l := range after.Leases {
		if !slices.Contains(before.Leases, l) {
			left = append(left, l)
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d leases left behind by 300 cancelled requests: %v", len(left), left)
	}
	release(t, "lock", "cancelados", held)
}

// A semaphore's holders are the same to its listing, to renovar and to a
// guarded write, whatever keys stand before the first limite: f1 and f2
// (another client's, without a limite) hold a line whose first limite, f3's, is 2.
func TestASemaphoresHoldersAreTheSameToEveryReader(t *testing.T) {
	const name = "mesmos-ocupantes"
	ctx := context.Background()
	lease, err := st.Client().Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Client().Revoke(ctx, lease.ID)
	var tokens []int64
	for i, val := range []string{`{}`, `{}`, `{"holder":"f3","limite":2}`} {
		resp, err := st.Client().Put(ctx, fmt.Sprintf("/semaphores/%s/f%d", name, i+1), val, clientv3.WithLease(lease.ID))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, resp.Header.Revision)
	}
	sem, err := st.GetSemaphore(ctx, name)
	if err != nil || sem.Limit != 2 || len(sem.Holders) != 2 || sem.Holders[0].Token != tokens[0] || sem.Holders[1].Token != tokens[1] {
		t.Fatalf("listed: %+v %v, want f1 and f2 holding with limite 2", sem, err)
	}
	if _, err := st.Renew(ctx, "semaforo", name, tokens[1]); err != nil {
		t.Fatalf("renewing f2, listed as a holder: %v", err)
	}
	if _, err := st.Renew(ctx, "semaforo", name, tokens[2]); !errors.Is(err, store.ErrNotOccupant) {
		t.Fatalf("renewing f3, listed as waiting: %v, want ErrNotOccupant", err)
	}
	write := []store.TxnOp{{Kind: "definir", Key: "mesmos-ocupantes", Value: []byte(`1`)}}
	if _, err := st.Transaction(ctx, nil, write, store.Guard{Kind: "semaforo", Resource: name, Token: tokens[1]}); err != nil {
		t.Fatalf("a write guarded by f2: %v", err)
	}
	var stale *store.StaleGuardError
	if _, err := st.Transaction(ctx, nil, write, store.Guard{Kind: "semaforo", Resource: name, Token: tokens[2]}); !errors.As(err, &stale) || stale.Current != tokens[1] {
		t.Fatalf("a write guarded by f3: %v, want stale with f2's token %d holding", err, tokens[1])
	}
}
