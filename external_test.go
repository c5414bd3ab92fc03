package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdapi/internal/testenv"
)

func TestExternalModeServesTheAPIFromARealEtcd(t *testing.T) {
	members := testenv.NewEtcdCluster(t, 1)
	members[0].Start(t)
	env := []string{"HTTP_ADDR=127.0.0.1:" + itoa(testenv.FreePort()), "ETCD_ENDPOINTS=" + members[0].ClientURL, "LOG_LEVEL=warn"}
	p := start(t, env).ready(t)
	p.waitOutput(t, "external etcd cluster")
	code, created := request[obj](t, "POST", p.API+"/usuarios", `{"nome":"Externa","email":"externa@email.com"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, created)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{members[0].ClientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), "/users/"+created["id"].(string))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("user not in the external etcd: %v %v", resp, err)
	}
	if code, got := request[obj](t, "GET", p.API+"/usuarios/"+created["id"].(string), ""); code != 200 || got["nome"] != "Externa" {
		t.Fatalf("get: %d %v", code, got)
	}
	// Configuration history works against etcd 3.4 too.
	request[obj](t, "PUT", p.API+"/config/ext", `{"valor":1}`)
	request[obj](t, "PUT", p.API+"/config/ext", `{"valor":2}`)
	if code, h := request[[]any](t, "GET", p.API+"/config/ext/historico", ""); code != 200 || len(h) != 2 {
		t.Fatalf("history: %d %v", code, h)
	}
}

func externalEnv(endpoints ...string) []string {
	return []string{"HTTP_ADDR=127.0.0.1:" + itoa(testenv.FreePort()), "ETCD_ENDPOINTS=" + strings.Join(endpoints, ","), "LOG_LEVEL=warn", "REQUEST_TIMEOUT=2s"}
}

// eventually polls f until it is true, failing after d.
func eventually(t testing.TB, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestExternalClusterSurvivesAMemberAnswers503WhenAllAreDownAndRecovers(t *testing.T) {
	members := testenv.NewEtcdCluster(t, 3)
	for _, m := range members {
		m.Start(t)
	}
	p := start(t, externalEnv(members[0].ClientURL, members[1].ClientURL, members[2].ClientURL)).ready(t)
	write := func() int { code, _, _ := post(p.API+"/usuarios", `{"nome":"externo"}`); return code }
	eventually(t, "first write", 10*time.Second, func() bool { return write() == 201 })
	if _, c := request[obj](t, "GET", p.API+"/cluster", ""); c["modo"] != "externo" || len(c["membros"].([]any)) != 3 {
		t.Fatalf("/cluster: %v", c)
	}

	members[0].Kill()
	eventually(t, "writes with one etcd member down", 10*time.Second, func() bool { return write() == 201 })
	for range 10 {
		if code := write(); code != 201 {
			t.Fatalf("write with two of three members: %d", code)
		}
	}

	members[1].Kill()
	members[2].Kill()
	began := time.Now()
	if code := write(); code != 503 {
		t.Fatalf("all members down: %d", code)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("all members down: 503 after %s (REQUEST_TIMEOUT is 2s)", d)
	}
	if code, _ := request[obj](t, "GET", p.API+"/readyz", ""); code != 503 {
		t.Fatalf("readyz with all members down: %d", code)
	}

	for _, m := range members {
		m.Start(t)
	}
	eventually(t, "service back with the members", 30*time.Second, func() bool { return write() == 201 })
}

func TestExternalClusterOverTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	m := testenv.NewTLSEtcd(t, certs)
	m.Start(t)
	env := append(externalEnv(m.ClientURL), "ETCD_CA_FILE="+certs.CA, "ETCD_CERT_FILE="+certs.ClientCert, "ETCD_KEY_FILE="+certs.ClientKey)
	p := start(t, env).ready(t)
	eventually(t, "write over TLS", 10*time.Second, func() bool { code, _, _ := post(p.API+"/usuarios", `{"nome":"tls"}`); return code == 201 })

	// Without the client certificate the cluster refuses us, and we say so at start.
	bad := start(t, append(externalEnv(m.ClientURL), "ETCD_CA_FILE="+certs.CA))
	if code := bad.exit(t, 10*time.Second); code == 0 {
		t.Fatal("started without a client certificate")
	}
}

func TestExternalClusterWithAuth(t *testing.T) {
	m := testenv.NewEtcdCluster(t, 1)[0]
	m.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eventually(t, "etcd up", 10*time.Second, func() bool { _, err := cli.Get(ctx, "x"); return err == nil })
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "s3gredo"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	cli.Close()

	p := start(t, append(externalEnv(m.ClientURL), "ETCD_USERNAME=root", "ETCD_PASSWORD=s3gredo")).ready(t)
	if code, _, _ := post(p.API+"/usuarios", `{"nome":"com senha"}`); code != 201 {
		t.Fatalf("write with credentials: %d", code)
	}
	bad := start(t, append(externalEnv(m.ClientURL), "ETCD_USERNAME=root", "ETCD_PASSWORD=errada"))
	if code := bad.exit(t, 10*time.Second); code == 0 || !strings.Contains(bad.out.String(), "authentication failed") {
		t.Fatalf("wrong password: exit %d:\n%s", code, bad.out)
	}
	if strings.Contains(bad.out.String(), "errada") {
		t.Fatal("the password shows in the output")
	}
}

// TestWaitersOfAKilledProcessLeaveTheLineWithinSeconds: two etcdapi processes
// share a cluster; one holds a lock, an election and a semaphore, the other
// has a waiter in each line and is killed. Its waiters must leave within
// seconds (their short waiting lease, 5 s), not stay for their TTL of 60 s.
func TestWaitersOfAKilledProcessLeaveTheLineWithinSeconds(t *testing.T) {
	members := testenv.NewEtcdCluster(t, 1)
	members[0].Start(t)
	holder := start(t, externalEnv(members[0].ClientURL)).ready(t)
	doomed := start(t, externalEnv(members[0].ClientURL)).ready(t)
	count := keyCounter(t, members[0].ClientURL)
	lines, _ := waiterInEachLine(t, count, holder, doomed) // their answers end with the process
	doomed.cmd.Process.Kill()
	killed := time.Now()
	for _, l := range lines {
		eventually(t, "the killed process's waiter gone from "+l.line, 10*time.Second, func() bool { return count(l.line) == l.waiting-1 })
	}
	t.Logf("waiters gone %s after the kill", time.Since(killed).Round(100*time.Millisecond))
}

// keyCounter counts the keys under a prefix, through an etcd client of its own.
func keyCounter(t *testing.T, endpoint string) func(prefix string) int64 {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return func(prefix string) int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return -1
		}
		return resp.Count
	}
}

type waitLine struct {
	path, body, line string
	waiting          int64 // keys under line with the waiter in it
}

type waiterAnswer struct {
	path string
	code int // 0: no answer (the error is in body)
	body obj
}

// waiterInEachLine has a lock, an election and a semaphore taken through
// holder, and a waiter (aguardar 60 s) put in each line through waiter; it
// returns once etcd shows the three waiters in line. Their answers come on
// the channel.
func waiterInEachLine(t *testing.T, count func(string) int64, holder, waiter *proc) ([]waitLine, <-chan waiterAnswer) {
	t.Helper()
	lines := []waitLine{
		{"/lock/fila", `{"holder":"%s","ttl":60,"aguardar":%d}`, "/locks-fila/fila/", 1},
		{"/eleicao/fila/candidatar", `{"candidato":"%s","ttl":60,"aguardar":%d}`, "/election/fila/", 2},
		{"/semaforo/fila", `{"holder":"%s","limite":1,"ttl":60,"aguardar":%d}`, "/semaphores/fila/", 2},
	}
	answers := make(chan waiterAnswer, len(lines))
	for _, l := range lines {
		if code, body := request[obj](t, "POST", holder.API+l.path, fmt.Sprintf(l.body, "dono", 0)); code != 200 {
			t.Fatalf("%s: %d %v", l.path, code, body)
		}
		go func() { // no t.Fatal here
			a := waiterAnswer{path: l.path, body: obj{}}
			resp, err := http.Post(waiter.API+l.path, "application/json", strings.NewReader(fmt.Sprintf(l.body, "esperando", 60)))
			if err != nil {
				a.body["erro"] = err.Error()
			} else {
				a.code = resp.StatusCode
				decodeInto(resp, &a.body)
				resp.Body.Close()
			}
			answers <- a
		}()
	}
	for _, l := range lines {
		eventually(t, "a waiter in "+l.line, 5*time.Second, func() bool { return count(l.line) == l.waiting })
	}
	return lines, answers
}

// A waiter whose server can no longer reach etcd (its only member killed)
// hears 503, as every other request then does: not 409 "place lost", which
// says another client took its place away, and not after its whole aguardar.
func TestWaitersHear503WhenEtcdIsGone(t *testing.T) {
	members := testenv.NewEtcdCluster(t, 1)
	members[0].Start(t)
	p := start(t, externalEnv(members[0].ClientURL)).ready(t)
	lines, answers := waiterInEachLine(t, keyCounter(t, members[0].ClientURL), p, p)
	members[0].Kill()
	if listening(members[0].ClientURL) {
		t.Fatal("etcd still listens after its kill")
	}
	killed := time.Now()
	for range lines {
		select {
		case a := <-answers:
			if a.code != 503 {
				t.Fatalf("%s waiting while etcd is gone: %d %v, want 503", a.path, a.code, a.body)
			}
			t.Logf("%s: 503 %s after the kill", a.path, time.Since(killed).Round(100*time.Millisecond))
		case <-time.After(40 * time.Second): // well short of aguardar (60 s)
			t.Fatal("a waiter still waits 40 s after etcd is gone")
		}
	}
}
