package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// primitive is one of the coordination routes, as the tests below drive it.
type primitive struct {
	name            string
	acquire         string // POST path
	body            string // %s: who, %d: seconds to wait
	release         string // DELETE path; the token is appended
	keys, waitering string // etcd prefix of the grant; of the line
}

// inLine is how many keys the line's prefix holds with one holder and n waiters
// (a lock's holder is not under its line's prefix).
func (p primitive) inLine(n int64) int64 {
	if p.keys == p.waitering {
		return n + 1
	}
	return n
}

// holderAndWaiter has p taken with holderBody, then puts a waiter called who
// (aguardar 30 s) in line behind it: the holder's answer, the waiter's answer
// to come, and the waiter's key in line.
func (p primitive) holderAndWaiter(t testing.TB, srv *httptest.Server, holderBody, who string) (obj, <-chan result, *mvccpb.KeyValue) {
	t.Helper()
	held := decode[obj](t, call(t, api, "POST", p.acquire, holderBody))
	waiter := async(srv.Client(), "POST", srv.URL+p.acquire, fmt.Sprintf(p.body, who, 30))
	await(t, p.name+": the waiter in line", func() bool { return countKeys(t, p.waitering) == p.inLine(1) })
	newest, err := st.Client().Get(context.Background(), p.waitering, clientv3.WithLastCreate()...)
	if err != nil || len(newest.Kvs) != 1 {
		t.Fatalf("the waiter's key: %v %v", newest, err)
	}
	return held, waiter, newest.Kvs[0]
}

// handOver releases held, and returns the answer of the waiter that serves.
func (p primitive) handOver(t testing.TB, held obj, waiter <-chan result) obj {
	t.Helper()
	expect(t, call(t, api, "DELETE", p.release+token(held), ""), 200)
	return got200(t, waiter).body
}

func primitives(name string) []primitive {
	return []primitive{
		{"lock", "/lock/" + name, `{"holder":"%s","ttl":5,"aguardar":%d}`, "/lock/" + name + "?token=", "/locks/" + name, "/locks-fila/" + name + "/"},
		{"eleicao", "/eleicao/" + name + "/candidatar", `{"candidato":"%s","ttl":5,"aguardar":%d}`, "/eleicao/" + name + "?token=", "/election/" + name + "/", "/election/" + name + "/"},
		{"semaforo", "/semaforo/" + name, `{"holder":"%s","limite":1,"ttl":5,"aguardar":%d}`, "/semaforo/" + name + "?token=", "/semaphores/" + name + "/", "/semaphores/" + name + "/"},
	}
}

// TestGrantsExpireByThemselves: a waiter's lease lives while it waits, even
// past its TTL, but once granted nothing keeps it alive: each grant is gone
// within TTL + 1 s (+1 s of slack for a busy machine) without renovar.
func TestGrantsExpireByThemselves(t *testing.T) {
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close) // after the parallel subtests
	for _, p := range primitives("expira-sozinho") {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			expect(t, call(t, api, "POST", p.acquire, fmt.Sprintf(p.body, "sumido", 0)), 200)
			waiter := async(srv.Client(), "POST", srv.URL+p.acquire, fmt.Sprintf(p.body, "paciente", 30))
			r := got200(t, waiter) // after ~5 s: it waited past its own TTL of 5
			for countKeys(t, p.keys) > 0 {
				if d := time.Since(r.at); d > 7*time.Second {
					t.Fatalf("a grant with TTL 5 still there %s after it was granted", d)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if d := time.Since(r.at); d < 3*time.Second {
				t.Fatalf("the grant expired %s after it was made: its TTL did not start afresh", d)
			}
		})
	}
}

// TestAWaiterWhoseLeaseIsLostHearsItAtOnce: when a waiter's lease ends while
// it waits (revoked here, as etcd would let it expire when its server could
// not renew it), its request answers 409, its place removed, within seconds,
// not once its aguardar of 30 s runs out.
func TestAWaiterWhoseLeaseIsLostHearsItAtOnce(t *testing.T) {
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close) // after the parallel subtests
	for _, p := range primitives("perdeu-a-vez") {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			long := strings.Replace(fmt.Sprintf(p.body, "dono", 0), `"ttl":5`, `"ttl":60`, 1) // outlives the wait
			held, waiter, key := p.holderAndWaiter(t, srv, long, "esperando")
			if _, err := st.Client().Revoke(context.Background(), clientv3.LeaseID(key.Lease)); err != nil {
				t.Fatal(err)
			}
			lost := time.Now()
			r := <-waiter
			if r.err != nil || r.code != 409 || r.body["erro"] != placeLost {
				t.Fatalf("waiter: %d %v %v, want 409: its place was removed", r.code, r.body, r.err)
			}
			if d := r.at.Sub(lost); d > 10*time.Second {
				t.Fatalf("the waiter heard of it %s after its lease was gone", d)
			}
			expect(t, call(t, api, "DELETE", p.release+token(held), ""), 200)
		})
	}
}

// TestShutdownEndsWaitersWith503: when the server's shutdown cancels a
// waiting request, it answers 503 and its place in line is gone.
func TestShutdownEndsWaitersWith503(t *testing.T) {
	for _, p := range primitives("desligar") {
		t.Run(p.name, func(t *testing.T) {
			held := decode[obj](t, call(t, api, "POST", p.acquire, fmt.Sprintf(p.body, "dono", 0)))
			ctx, cancel := context.WithCancelCause(context.Background())
			req := httptest.NewRequest("POST", p.acquire, strings.NewReader(fmt.Sprintf(p.body, "esperando", 30))).WithContext(ctx)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			done := make(chan struct{})
			go func() { api.ServeHTTP(w, req); close(done) }()
			await(t, "the waiter in line", func() bool { return countKeys(t, p.waitering) == p.inLine(1) })
			cancel(ErrShuttingDown)
			<-done
			expect(t, w, 503)
			await(t, "the waiter's place gone", func() bool { return countKeys(t, p.waitering) == p.inLine(0) })
			expect(t, call(t, api, "DELETE", p.release+token(held), ""), 200)
		})
	}
}

// BenchmarkHandover measures, for each primitive, the time from a release to
// the next waiter's 200, and reports its median and p99 (a benchmark, not a
// test: the machine's speed never fails it).
func BenchmarkHandover(b *testing.B) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, p := range primitives("revezamento") {
		b.Run(p.name, func(b *testing.B) {
			held := decode[obj](b, call(b, api, "POST", p.acquire, fmt.Sprintf(p.body, "h0", 0)))
			var took []time.Duration
			for b.Loop() {
				next := async(srv.Client(), "POST", srv.URL+p.acquire, fmt.Sprintf(p.body, fmt.Sprint("h", len(took)+1), 30))
				await(b, "the next waiter in line", func() bool { return countKeys(b, p.waitering) == p.inLine(1) })
				released := time.Now()
				if code, body, err := sendJSON(srv.Client(), "DELETE", srv.URL+p.release+token(held), ""); err != nil || code != 200 {
					b.Fatalf("release: %d %v %v", code, body, err)
				}
				r := got200(b, next)
				took = append(took, r.at.Sub(released))
				held = r.body
			}
			expect(b, call(b, api, "DELETE", p.release+token(held), ""), 200)
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
			b.ReportMetric(float64(took[(len(took)*99+99)/100-1].Microseconds())/1000, "ms-p99") // nearest rank
		})
	}
}
