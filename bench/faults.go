package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// demoMember is a member as GET /demo/membros lists it.
type demoMember struct {
	Name   string `json:"nome"`
	Client string `json:"cliente"`
	State  string `json:"estado"`
	Leader bool   `json:"lider"`
}

// faults measures, on `etcdapi demo`, what a workshop sees when the leader is
// isolated or paused while writes go on through the supervisor's one URL:
// the time until etcd's own status shows a new leader, the writes that
// failed meanwhile, and the time for the member, given back, to reach the
// others' revision. Medians of runs.
func faults(bin string, runs int) {
	port := freePort()
	cmd := exec.Command(bin, "demo")
	cmd.Env = append(childEnvironment(), fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port))
	check(cmd.Start())
	children.Store(cmd, true)
	p := &proc{cmd: cmd, api: fmt.Sprintf("http://127.0.0.1:%d", port)}
	defer p.stop()
	members := func() []demoMember {
		var ms []demoMember
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				check(fmt.Errorf("demo: no leader with 3 members up within 30 s: %+v", ms))
			}
			resp, err := http.Get(p.api + "/demo/membros")
			if err != nil {
				continue
			}
			ms = nil
			json.NewDecoder(resp.Body).Decode(&ms)
			resp.Body.Close()
			up := 0
			for _, m := range ms {
				if m.State == "ativo" {
					up++
				}
			}
			if up == 3 && slices.ContainsFunc(ms, func(m demoMember) bool { return m.Leader }) {
				return ms
			}
		}
	}
	fmt.Printf("\n## Faults in `etcdapi demo` (3 members, 500 ms election timeout), median of %d runs\n\n", runs)
	fmt.Println("| fault | new leader after | writes failed through the supervisor (of sent, one every 20 ms) | given back: same revision as the others after |")
	fmt.Println("|---|---|---|---|")
	for _, f := range []struct{ name, do, undo string }{
		{"leader isolated (isolar)", "isolar", "reconectar"},
		{"leader paused (pausar, SIGSTOP)", "pausar", "retomar"},
	} {
		var elections, catchUps []time.Duration
		var failed, sent []int
		for run := range runs {
			ms := members()
			leader := ms[slices.IndexFunc(ms, func(m demoMember) bool { return m.Leader })]
			var others []demoMember
			for _, m := range ms {
				if m.Name != leader.Name {
					others = append(others, m)
				}
			}
			oldID := memberID(leader.Client)

			var ok, bad atomic.Int64
			stop := make(chan struct{})
			var writer sync.WaitGroup
			writer.Go(func() {
				c := &http.Client{Timeout: 10 * time.Second}
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if do(c, "PUT", fmt.Sprintf("%s/config/falha-%d", p.api, run), fmt.Sprintf(`{"valor":%d}`, i), 200) == nil {
						ok.Add(1)
					} else {
						bad.Add(1)
					}
				}
			})
			time.Sleep(200 * time.Millisecond) // writes going on before the fault
			began := time.Now()
			check(do(http.DefaultClient, "POST", p.api+"/demo/membros/"+leader.Name+"/"+f.do, "", 200))
			waitUntil(30*time.Second, "a new leader at the majority", func() bool { return newLeader(others, oldID) != 0 })
			elections = append(elections, time.Since(began))
			time.Sleep(time.Second) // writes going on after the election
			close(stop)
			writer.Wait()
			failed, sent = append(failed, int(bad.Load())), append(sent, int(ok.Load()+bad.Load()))

			check(do(http.DefaultClient, "POST", p.api+"/demo/membros/"+leader.Name+"/"+f.undo, "", 200))
			back := time.Now()
			waitUntil(30*time.Second, leader.Name+" back at the others' revision", func() bool { return sameRevision(leader, others) })
			catchUps = append(catchUps, time.Since(back))
		}
		slices.Sort(failed)
		slices.Sort(sent)
		fmt.Printf("| %s | %s | %d of %d | %s |\n", f.name, medianDuration(elections), failed[len(failed)/2], sent[len(sent)/2], medianDuration(catchUps))
	}
}

// waitUntil polls cond until it holds, and stops the bench after d.
func waitUntil(d time.Duration, what string, cond func() bool) {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			check(fmt.Errorf("faults: no %s within %s", what, d))
		}
	}
}

func medianDuration(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2].Round(time.Millisecond)
}

// statusClients keeps one client per member: a poll must not dial while it
// times a fault.
var statusClients sync.Map // url -> *clientv3.Client

// statusOf is etcd's own status of the member at url, nil if it does not answer.
func statusOf(url string) *clientv3.StatusResponse {
	c, ok := statusClients.Load(url)
	if !ok {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: time.Second})
		check(err)
		if c, ok = statusClients.LoadOrStore(url, cli); ok {
			cli.Close()
		}
	}
	cli := c.(*clientv3.Client)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	st, err := cli.Status(ctx, url)
	if err != nil {
		return nil
	}
	return st
}

func memberID(url string) uint64 {
	st := statusOf(url)
	if st == nil {
		check(fmt.Errorf("no status from %s", url))
	}
	return st.Header.MemberId
}

// newLeader is the leader the others agree on, other than old; 0 until then.
func newLeader(others []demoMember, old uint64) uint64 {
	var seen uint64
	for _, m := range others {
		st := statusOf(m.Client)
		if st == nil || st.Leader == 0 || st.Leader == old || (seen != 0 && st.Leader != seen) {
			return 0
		}
		seen = st.Leader
	}
	return seen
}

// sameRevision tells whether m has reached the others' revision.
func sameRevision(m demoMember, others []demoMember) bool {
	mine := statusOf(m.Client)
	if mine == nil {
		return false
	}
	for _, o := range others {
		if st := statusOf(o.Client); st == nil || st.Header.Revision != mine.Header.Revision {
			return false
		}
	}
	return true
}

// childEnvironment is this process's environment without the settings that
// would point the demo elsewhere.
func childEnvironment() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HTTP_ADDR=") && !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}
