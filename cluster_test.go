package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"etcdapi/internal/testenv"
)

// clusterEnvs is the environment of n embedded members forming one cluster.
func clusterEnvs(t testing.TB, n int) [][]string {
	envs := make([][]string, n)
	var initial []string
	for i := range envs {
		envs[i] = append(memberEnv(t.TempDir()), fmt.Sprintf("ETCD_NAME=n%d", i), "REQUEST_TIMEOUT=2s")
		initial = append(initial, fmt.Sprintf("n%d=%s", i, envValue(envs[i], "ETCD_LISTEN_PEER_URLS")))
	}
	for i := range envs {
		envs[i] = append(envs[i], "ETCD_INITIAL_CLUSTER="+strings.Join(initial, ","))
	}
	return envs
}

var quick = &http.Client{Timeout: 10 * time.Second}

func waitReady(t testing.TB, p *proc) {
	t.Helper()
	testenv.WaitHTTP(t, quick, p.API+"/readyz", 30*time.Second)
}

// leaderOf asks a member which member leads.
func leaderOf(t testing.TB, p *proc) string {
	t.Helper()
	_, c := request[obj](t, "GET", p.API+"/cluster", "")
	name, _ := c["lider"].(string)
	return name
}

func post(url, body string) (int, string, error) {
	resp, err := quick.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var v map[string]any
	decodeInto(resp, &v)
	id, _ := v["id"].(string)
	return resp.StatusCode, id, nil
}

func TestClusterSurvivesTheLeaderAndComesBackAfterQuorumLoss(t *testing.T) {
	envs := clusterEnvs(t, 3)
	procs := make([]*proc, 3)
	for i, env := range envs {
		procs[i] = start(t, env)
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	leader := -1
	for i := range procs {
		if leaderOf(t, procs[0]) == fmt.Sprintf("n%d", i) {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no leader")
	}

	// A steady write load through the two members that survive.
	var (
		mu        sync.Mutex
		acked     []string
		lastError time.Time
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for i, p := range procs {
		if i == leader {
			continue
		}
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				code, id, err := post(p.API+"/usuarios", fmt.Sprintf(`{"nome":"carga %d"}`, n))
				mu.Lock()
				if code == 201 {
					acked = append(acked, id)
				} else {
					lastError = time.Now()
				}
				mu.Unlock()
				_ = err
			}
		})
	}
	time.Sleep(time.Second)
	killed := time.Now()
	procs[leader].cmd.Process.Kill()
	<-procs[leader].done
	procs[leader].done <- nil
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	if d := lastError.Sub(killed); !lastError.IsZero() && d > 3*time.Second {
		t.Fatalf("writes failed until %s after the leader died", d)
	}
	t.Logf("%d writes acknowledged; errors for %s after the leader died", len(acked), max(0, lastError.Sub(killed)).Round(time.Millisecond))

	// /cluster asks each member its status: the dead one is unreachable, with null
	// status fields, and the answer stays within the 1 s bound per member.
	survivor := procs[(leader+1)%3]
	began := time.Now()
	code, c := request[obj](t, "GET", survivor.API+"/cluster", "")
	if d := time.Since(began); code != 200 || d > 2*time.Second {
		t.Fatalf("/cluster with a member down: %d in %s: %v", code, d, c)
	}
	for _, m := range c["membros"].([]any) {
		m := m.(obj)
		dead := m["nome"] == fmt.Sprintf("n%d", leader)
		switch {
		case dead && (m["estado"] != "inacessivel" || m["revisao"] != nil || m["termo_raft"] != nil || m["indice_raft"] != nil || m["tamanho_db"] != nil || m["lider"] != false):
			t.Fatalf("dead member: %v", m)
		case !dead && (m["estado"] != "ativo" || m["revisao"].(float64) < float64(len(acked)) || m["termo_raft"].(float64) < 2 || m["indice_raft"].(float64) <= 0 || m["tamanho_db"].(float64) <= 0):
			t.Fatalf("live member: %v", m)
		}
	}
	if c["lider"] == fmt.Sprintf("n%d", leader) || c["lider"] == "" {
		t.Fatalf("leader after the old one died: %v", c["lider"])
	}

	// The killed member restarts on its data dir, catches up, and has every acknowledged write.
	procs[leader] = start(t, envs[leader])
	waitReady(t, procs[leader])
	for _, id := range acked {
		if code, _ := request[obj](t, "GET", procs[leader].API+"/usuarios/"+id, ""); code != 200 {
			t.Fatalf("acknowledged user %s: %d on the restarted member", id, code)
		}
	}

	// Two members down: no quorum. The last one answers 503 fast, and never hangs.
	for i := range 2 {
		procs[i].cmd.Process.Kill()
		<-procs[i].done
		procs[i].done <- nil
	}
	last := procs[2]
	for _, probe := range []func() int{
		func() int { code, _, _ := post(last.API+"/usuarios", `{"nome":"sem quorum"}`); return code },
		func() int { code, _ := request[obj](t, "GET", last.API+"/usuarios/"+acked[0], ""); return code },
		func() int { code, _ := request[obj](t, "GET", last.API+"/readyz", ""); return code },
	} {
		began := time.Now()
		if code := probe(); code != 503 {
			t.Fatalf("without quorum: %d, want 503", code)
		}
		if d := time.Since(began); d > 3*time.Second {
			t.Fatalf("without quorum the answer took %s (REQUEST_TIMEOUT is 2s)", d)
		}
	}

	// One member back: service returns by itself.
	procs[0] = start(t, envs[0])
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, _ := post(last.API+"/usuarios", `{"nome":"quorum de volta"}`); code == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("service did not come back with quorum")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestJoinGrowsAClusterFromOneNodeToThree(t *testing.T) {
	first := start(t, append(memberEnv(t.TempDir()), "ETCD_NAME=a"))
	waitReady(t, first)
	nodes := []*proc{first}
	for _, name := range []string{"b", "c"} {
		p := start(t, append(memberEnv(t.TempDir()), "ETCD_NAME="+name, "ETCD_JOIN="+first.Client))
		waitReady(t, p)
		nodes = append(nodes, p)
	}
	_, c := request[obj](t, "GET", first.API+"/cluster", "")
	if members, _ := c["membros"].([]any); len(members) != 3 {
		t.Fatalf("cluster after two joins: %v", c)
	}
	code, id, err := post(nodes[2].API+"/usuarios", `{"nome":"pelo mais novo"}`)
	if code != 201 || err != nil {
		t.Fatalf("write through the newest node: %d %v", code, err)
	}
	if code, u := request[obj](t, "GET", first.API+"/usuarios/"+id, ""); code != 200 || u["nome"] != "pelo mais novo" {
		t.Fatalf("read through the first node: %d %v", code, u)
	}
	// A joined member restarts on its data dir without joining again.
	nodes[1].cmd.Process.Signal(interrupt)
	nodes[1].exit(t, 15*time.Second)
	again := start(t, nodes[1].cmd.Env[2:])
	waitReady(t, again)
}
