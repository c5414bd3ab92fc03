package server

import (
	"net/http/httptest"
	"testing"
	"time"

	"etcdapi/internal/testenv"
)

// Jepsen's lock workload on one member (testenv.RunHolderSet): 10 clients, two
// of them paused past their lock's TTL once, as a GC pause or a closed laptop
// would. The appends carry the guard alone (no condition on the list's
// revision), so only the guard can stop a paused holder's stale list from
// overwriting newer appends. Every acknowledged append is in the list
// afterwards, its tokens strictly increase, and the paused clients' appends
// are refused.
func TestLockSetKeepsEveryAcknowledgedAppendInTokenOrder(t *testing.T) {
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close) // after the parallel subtests
	// The same for an election's leader and a semaphore's one place, side by
	// side: each guarded by its own kind of guard (Etcdapi-Guarda's eleicao=
	// and semaforo=), on its own list.
	for _, kind := range []testenv.Kind{testenv.Lock, testenv.Election, testenv.Semaphore} {
		t.Run(kind.Guard, func(t *testing.T) {
			t.Parallel()
			run, err := testenv.RunHolderSet(srv.URL, kind, 10, 4, func(client, round int) time.Duration {
				if client < 2 && round == 1 {
					return 6 * time.Second // past the 5 s TTL: the place passes on meanwhile
				}
				return 0
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := run.Check(); err != nil {
				t.Fatal(err)
			}
			if run.Refused < 2 || run.Failed > 0 {
				t.Fatalf("%d appends refused, %d failed: the paused clients' appends went through, or a request failed", run.Refused, run.Failed)
			}
			t.Logf("%s: %d appends acknowledged, %d refused (stale holders), list of %d", kind.Guard, len(run.Acked), run.Refused, len(run.Final))
		})
	}
}
