package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"etcdapi/internal/testenv"
)

func TestServesHTTPSWithTheGivenCertificate(t *testing.T) {
	certs := testenv.NewCerts(t)
	env := append(memberEnv(t.TempDir()), "TLS_CERT_FILE="+certs.ServerCert, "TLS_KEY_FILE="+certs.ServerKey)
	p := start(t, env)
	pem, _ := os.ReadFile(certs.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	url := strings.Replace(p.API, "http://", "https://", 1)
	testenv.WaitHTTP(t, client, url+"/healthz", 30*time.Second)
	p.waitOutput(t, "https://")
}

func TestExposedWithoutProtectionWarnsAtStart(t *testing.T) {
	env := append(memberEnv(t.TempDir()), "LOG_LEVEL=info")
	env = append(env, "HTTP_ADDR=0.0.0.0:"+itoa(testenv.FreePort()))
	p := start(t, env)
	testenv.WaitHTTP(t, http.DefaultClient, "http://127.0.0.1:"+strings.Split(envValue(env[len(env)-1:], "HTTP_ADDR"), ":")[1]+"/healthz", 30*time.Second)
	p.waitOutput(t, "neither API_TOKEN nor TLS")

	// The demo's supervisor too.
	demo := start(t, []string{"HTTP_ADDR=0.0.0.0:" + itoa(testenv.FreePort())}, "demo", "--membros", "1")
	demo.waitOutput(t, "neither API_TOKEN nor TLS")
	demo.cmd.Process.Signal(os.Interrupt) // so it removes its members' data
	demo.exit(t, 15*time.Second)
}

func listIDs(t testing.TB, api string) []string {
	t.Helper()
	code, users := request[[]any](t, "GET", api+"/usuarios", "")
	if code != 200 {
		t.Fatalf("list: %d", code)
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.(map[string]any)["_id"].(string)
	}
	sort.Strings(ids)
	return ids
}

func TestSnapshotThenRestoreGivesExactlyTheSnapshottedState(t *testing.T) {
	dir := t.TempDir()
	env := memberEnv(dir)
	p := start(t, env).ready(t)
	for i := range 5 {
		post(p.API+"/usuarios", fmt.Sprintf(`{"nome":"antes %d"}`, i))
	}
	before := listIDs(t, p.API)
	resp, err := http.Get(p.API + "/cluster/snapshot")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("snapshot: %v %v", resp, err)
	}
	file := filepath.Join(dir, "snap.db")
	f, _ := os.Create(file)
	io.Copy(f, resp.Body)
	f.Close()
	resp.Body.Close()
	for i := range 3 {
		post(p.API+"/usuarios", fmt.Sprintf(`{"nome":"depois %d"}`, i))
	}
	p.cmd.Process.Signal(os.Interrupt)
	p.exit(t, 15*time.Second)

	restored := append(memberEnv(t.TempDir()), "ETCD_DATA_DIR="+filepath.Join(dir, "restored"))
	r := start(t, restored, "restore", file)
	if code := r.exit(t, 30*time.Second); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, r.out)
	}
	again := start(t, restored).ready(t)
	if after := listIDs(t, again.API); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("restored %v, snapshotted %v", after, before)
	}
	// Restoring onto an existing data dir is refused.
	r = start(t, restored, "restore", file)
	if code := r.exit(t, 30*time.Second); code == 0 || !strings.Contains(r.out.String(), "exists") {
		t.Fatalf("restore over a data dir: exit %d\n%s", code, r.out)
	}
}

// TestAcknowledgedUsersSurviveSIGKILL kills the process while clients create
// users, five times, and finds every user whose creation was answered 201.
func TestAcknowledgedUsersSurviveSIGKILL(t *testing.T) {
	env := memberEnv(t.TempDir())
	var acked []string
	for round := range 5 {
		p := start(t, env).ready(t)
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 4 {
			wg.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					code, id, _ := post(p.API+"/usuarios", fmt.Sprintf(`{"nome":"r%d w%d n%d"}`, round, w, n))
					if code == 201 {
						mu.Lock()
						acked = append(acked, id)
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
		p.cmd.Process.Kill()
		close(stop)
		wg.Wait()
		<-p.done
		p.done <- nil
	}
	p := start(t, env).ready(t)
	have := map[string]bool{}
	for _, id := range listIDs(t, p.API) {
		have[id] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("user %s was acknowledged with 201 and is gone after SIGKILL", id)
		}
	}
	t.Logf("%d acknowledged users, all found after 5 kills", len(acked))
}

func TestEtcdDebugLogLevelOpensNoProfilingEndpoint(t *testing.T) {
	env := append(memberEnv(t.TempDir()), "ETCD_LOG_LEVEL=debug")
	p := start(t, env).ready(t)
	resp, err := http.Get(p.Client + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatal("ETCD_LOG_LEVEL=debug opened pprof on the member's client port")
	}
}

// Shutting down does not wait out a lock waiter's aguardar: it answers 503 at
// once (issue 10; TestSIGTERMEndsStreamsAndAnswersWaitersAtOnce times it).
func TestShutdownAnswersInFlightWaitersAt503(t *testing.T) {
	p := start(t, memberEnv(t.TempDir())).ready(t)
	post(p.API+"/lock/ocupado", `{"holder":"dono","ttl":30}`)
	answered := make(chan int, 1)
	go func() {
		code, _, _ := post(p.API+"/lock/ocupado", `{"holder":"paciente","aguardar":20}`)
		answered <- code
	}()
	// The waiter is in flight once it stands in the lock's line.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, l := request[obj](t, "GET", p.API+"/lock/ocupado", ""); l["fila"] == float64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiter never joined the line")
		}
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case code := <-answered:
		if code != 503 {
			t.Fatalf("the in-flight waiter got %d, want 503", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the in-flight waiter still waits after shutdown began")
	}
	if code := p.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
