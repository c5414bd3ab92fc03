package store

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A restarted member fills its search index while it waits to be ready: here
// it waits for its peer, and by the time the peer is back the index is full.
func TestRestartedMemberFillsItsIndexBeforeItIsReady(t *testing.T) {
	ctx := context.Background()
	peerA, peerB := freeURL(t), freeURL(t)
	member := func(name string, peer URLs) Config {
		return Config{Name: name, DataDir: t.TempDir(), ListenClientURLs: freeURL(t), ListenPeerURLs: peer,
			InitialCluster:      fmt.Sprintf("a=%s,b=%s", peerA.String(), peerB.String()),
			InitialClusterState: "new", InitialClusterToken: "reinicio", QuotaBytes: 1 << 30, LogLevel: "error",
			AutoCompactionRetention: time.Hour, HeartbeatMs: 100, ElectionMs: 1000,
			RequestTimeout: 5 * time.Second, StartupTimeout: 30 * time.Second}
	}
	a, b := member("a", peerA), member("b", peerB)
	open := func(cfg Config) <-chan *Store {
		c := make(chan *Store, 1)
		go func() {
			s, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Error(err)
			}
			c <- s
		}()
		return c
	}
	ca, cb := open(a), open(b)
	sa, sb := <-ca, <-cb
	if sa == nil || sb == nil {
		t.FailNow()
	}
	const users = 5000
	for i := 0; i < users; i += 100 {
		var ops []clientv3.Op
		for j := i; j < i+100; j++ {
			ops = append(ops, clientv3.OpPut(UserKey(fmt.Sprintf("u%05d", j)), fmt.Sprintf(`{"nome":"Reinício %05d"}`, j)))
		}
		if _, err := sa.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	sa.Close()
	sb.Close()
	if alone(a.DataDir) {
		t.Fatal("a member of a two-member cluster counts as alone (it would take a lone member's short ticks)")
	}

	ca = open(a) // alone it has no quorum: it waits for b
	// b stays down long enough for the fill of 5000 users (tens of
	// milliseconds): the fill's end is not visible from outside the store.
	time.Sleep(time.Second)
	cb = open(b)
	sa = <-ca
	n := -1
	if sa != nil { // counted the moment a is ready, before anything waits for b's Open
		defer sa.Close()
		sa.index.mu.RLock()
		n = sa.index.ids.Len()
		sa.index.mu.RUnlock()
	}
	if sb = <-cb; sb != nil {
		defer sb.Close()
	}
	if sa == nil || sb == nil {
		t.FailNow()
	}
	if n != users {
		t.Fatalf("%d users in the index when the member became ready, want %d", n, users)
	}
}
