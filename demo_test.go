package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"etcdapi/internal/testenv"
)

type demoMember struct {
	Name   string `json:"nome"`
	PID    *int   `json:"pid"`
	API    string `json:"api"`
	Client string `json:"cliente"`
	State  string `json:"estado"`
	Leader bool   `json:"lider"`
	Dir    string `json:"dados"`
}

// startDemo runs etcdapi demo and waits for its banner.
func startDemo(t *testing.T, args ...string) (*proc, time.Duration) {
	t.Helper()
	began := time.Now()
	p := start(t, []string{"HTTP_ADDR=127.0.0.1:" + itoa(testenv.FreePort())}, append([]string{"demo"}, args...)...)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String(), "etcdctl") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner:\n%s", p.out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Before start's cleanup kills it: Ctrl-C, so the demo removes its data.
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-p.done:
			p.done <- err
		case <-time.After(5 * time.Second):
		}
	})
	return p, time.Since(began)
}

func demoMembers(t *testing.T, p *proc) []demoMember {
	t.Helper()
	code, ms := request[[]demoMember](t, "GET", p.API+"/demo/membros", "")
	if code != 200 {
		t.Fatalf("GET /demo/membros: %d", code)
	}
	return ms
}

// revisions asks each running member for its own revision, through its own API.
func revisions(t *testing.T, ms []demoMember) map[string]float64 {
	revs := map[string]float64{}
	for _, m := range ms {
		if m.State != "ativo" {
			continue
		}
		_, c := request[obj](t, "GET", m.API+"/cluster", "")
		for _, cm := range c["membros"].([]any) {
			cm := cm.(obj)
			if cm["nome"] == m.Name {
				revs[m.Name], _ = cm["revisao"].(float64)
			}
		}
	}
	return revs
}

func TestDemoKeepsTheAPIUpWhileMembersStopAndStart(t *testing.T) {
	p, took := startDemo(t)
	t.Logf("demo ready in %s (banner: %s)", took.Round(time.Millisecond), strings.SplitN(p.out.String(), "\n", 2)[0])
	if took > 10*time.Second {
		t.Fatalf("demo took %s to be ready", took)
	}
	ms := demoMembers(t, p)
	if len(ms) != 3 {
		t.Fatalf("members: %+v", ms)
	}
	leader := ""
	for _, m := range ms {
		if m.State != "ativo" || m.PID == nil {
			t.Fatalf("member not running: %+v", m)
		}
		if m.Leader {
			leader = m.Name
		}
	}
	if leader == "" {
		t.Fatalf("no leader: %+v", ms)
	}
	if code, _ := request[obj](t, "PUT", p.API+"/config/antes", `{"valor":1}`); code != 200 {
		t.Fatalf("write before: %d", code)
	}

	// The leader crashes: the same URL keeps taking writes.
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+leader+"/parar", ""); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+leader+"/parar", ""); code != 409 {
		t.Fatalf("stop again: %d, want 409", code)
	}
	stopped := time.Now()
	for n := 0; n < 10; n++ {
		if code, body := request[obj](t, "PUT", p.API+"/config/durante", fmt.Sprintf(`{"valor":%d}`, n)); code != 200 {
			t.Fatalf("write %d while %s is stopped: %d %v", n, leader, code, body)
		}
	}
	t.Logf("10 writes through the supervisor in %s after the leader stopped", time.Since(stopped).Round(time.Millisecond))
	for _, m := range demoMembers(t, p) {
		if m.Name == leader && (m.State != "parado" || m.PID != nil || m.Leader) {
			t.Fatalf("stopped member: %+v", m)
		}
	}

	// It comes back on its data directory and catches up with what it missed.
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+leader+"/iniciar", ""); code != 200 {
		t.Fatalf("start: %d", code)
	}
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+leader+"/iniciar", ""); code != 409 {
		t.Fatalf("start again: %d, want 409", code)
	}
	if code, _ := request[obj](t, "POST", p.API+"/demo/membros/ghost/iniciar", ""); code != 404 {
		t.Fatalf("unknown member: %d, want 404", code)
	}
	ms = demoMembers(t, p)
	deadline := time.Now().Add(10 * time.Second)
	for {
		revs := revisions(t, ms)
		if len(revs) == 3 && revs[leader] == revs[ms[0].Name] && revs[leader] == revs[ms[1].Name] && revs[leader] == revs[ms[2].Name] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted member does not catch up: %v", revs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range ms {
		if m.Name == leader {
			if code, got := request[obj](t, "GET", m.API+"/config/durante", ""); code != 200 || got["durante"] != float64(9) {
				t.Fatalf("restarted member's view of a write it missed: %d %v", code, got)
			}
		}
	}

	// Ctrl-C: everything stops within 2 s and the data is gone.
	p.cmd.Process.Signal(os.Interrupt)
	began := time.Now()
	if code := p.exit(t, 2*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.out)
	}
	t.Logf("stopped in %s after SIGINT", time.Since(began).Round(time.Millisecond))
	for _, m := range ms {
		if _, err := os.Stat(m.Dir); !os.IsNotExist(err) {
			t.Fatalf("data directory %s left behind: %v", m.Dir, err)
		}
		if listening(m.API) {
			t.Fatalf("%s still listens on %s", m.Name, m.API)
		}
	}
}

func TestDemoMembersDieWithTheSupervisorEvenOnSIGKILL(t *testing.T) {
	p, _ := startDemo(t)
	ms := demoMembers(t, p)
	if len(ms) != 3 {
		t.Fatalf("members: %+v", ms)
	}
	// One paused, one isolated, one as it is: none may outlive the supervisor.
	for name, action := range map[string]string{ms[0].Name: "pausar", ms[1].Name: "isolar"} {
		if code, body := request[obj](t, "POST", p.API+"/demo/membros/"+name+"/"+action, ""); code != 200 {
			t.Fatalf("%s %s: %d %v", action, name, code, body)
		}
	}
	// Both faults happened, as the kernel and etcd see them.
	within(t, 2*time.Second, ms[0].Name+" stopped (state T) after pausar", func() bool { return paused(*ms[0].PID) })
	cli := statusClient(t, ms)
	within(t, 5*time.Second, ms[1].Name+" isolated: its own status shows no leader", func() bool {
		s, err := memberStatus(cli, ms[1])
		return err == nil && s.Leader == 0
	})
	p.cmd.Process.Kill()
	p.exit(t, 2*time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for _, m := range ms {
		for alive(*m.PID) || listening(m.API) {
			if time.Now().After(deadline) {
				t.Fatalf("member %s (pid %d) outlived its supervisor (orphan on %s)", m.Name, *m.PID, m.API)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	os.RemoveAll(strings.TrimSuffix(ms[0].Dir, "/"+ms[0].Name)) // nobody was left to remove it
}

func TestDemoRejectsAnEvenNumberOfMembers(t *testing.T) {
	for _, n := range []string{"2", "0", "9", "x"} {
		p := start(t, nil, "demo", "--membros", n)
		if code := p.exit(t, 5*time.Second); code != 2 || !strings.Contains(p.out.String(), "membros") || strings.Count(strings.TrimSpace(p.out.String()), "\n") > 0 {
			t.Fatalf("--membros %s: exit %d:\n%s", n, code, p.out)
		}
	}
}

// Demo members are local and plain HTTP: TLS or an external cluster is refused, not ignored.
func TestDemoRefusesTLSAndAnExternalCluster(t *testing.T) {
	for _, args := range [][]string{
		{"--tls-cert-file", "c.pem", "--tls-key-file", "k.pem"},
		{"--endpoints", "http://127.0.0.1:1"},
	} {
		p := start(t, nil, append([]string{"demo", "--membros", "1"}, args...)...)
		if code := p.exit(t, 10*time.Second); code != 2 || !strings.Contains(p.out.String(), "plain HTTP") {
			t.Fatalf("demo %v: exit %d:\n%s", args, code, p.out)
		}
	}
}

// alive tells whether a process exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(stat), ") Z ")
}

// paused tells whether a process is stopped (state T), as SIGSTOP leaves it.
// The stop lands once the process is next scheduled, not when kill returns:
// callers await it with within.
func paused(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && strings.Contains(string(stat), ") T ")
}

func listening(url string) bool {
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

// GET /eventos through the supervisor outlives the member behind it: each
// member is stopped in turn while the stream stays open, and every write's
// event arrives once, in order, carried over with Last-Event-ID; the terminal
// says so in one line, without Go's raw proxy errors.
func TestDemoEventStreamCarriesOverWhenItsMemberStops(t *testing.T) {
	p, _ := startDemo(t)
	resp, err := http.Get(p.API + "/eventos?prefixo=/config/app/fluxo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /eventos: %d", resp.StatusCode)
	}
	values := make(chan float64, 100)
	ended := make(chan error, 1)
	go func() {
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				var ev struct {
					Valor float64 `json:"valor"`
				}
				json.Unmarshal([]byte(data), &ev)
				values <- ev.Valor
			}
		}
		ended <- fmt.Errorf("the stream ended: %v", lines.Err())
	}()
	next := func(want float64) {
		t.Helper()
		select {
		case got := <-values:
			if got != want {
				t.Fatalf("event %v, want %v (each write once, in order)", got, want)
			}
		case err := <-ended:
			t.Fatal(err)
		case <-time.After(5 * time.Second):
			t.Fatalf("no event for the write of %v within 5 s", want)
		}
	}
	n := 0
	write := func() {
		t.Helper()
		n++
		if code, body := request[obj](t, "PUT", p.API+"/config/fluxo", fmt.Sprintf(`{"valor":%d}`, n)); code != 200 {
			t.Fatalf("write %d: %d %v", n, code, body)
		}
		next(float64(n))
	}
	write()
	for _, m := range demoMembers(t, p) { // the one behind the stream is among them
		if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+m.Name+"/parar", ""); code != 200 {
			t.Fatalf("parar %s: %d", m.Name, code)
		}
		if alive(*m.PID) { // the fault happened: the process behind the stream may be this one
			t.Fatalf("%s (pid %d) still running after parar", m.Name, *m.PID)
		}
		write()
		write()
		if code, _ := request[obj](t, "POST", p.API+"/demo/membros/"+m.Name+"/iniciar", ""); code != 200 {
			t.Fatalf("iniciar %s: %d", m.Name, code)
		}
		write()
	}
	select {
	case got := <-values:
		t.Fatalf("an extra event %v: an event passed on twice", got)
	case <-time.After(200 * time.Millisecond):
	}
	if out := p.out.String(); !strings.Contains(out, "/eventos: o stream de") || strings.Contains(out, "ReverseProxy") {
		t.Fatalf("the terminal should say in one line that the stream carried over, with no raw proxy error:\n%s", out)
	}
}
