package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SPEC §7: nothing one client does, with or without the token, stops the
// process, stalls everyone else or grows memory without bound.

// bigValue is a configuration body of about n bytes.
func bigValue(n int) string { return `{"valor":"` + strings.Repeat("x", n) + `"}` }

// put sends one PUT with client and returns its status (0 when it got no answer).
func put(t testing.TB, client *http.Client, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Logf("PUT %s: %v", url, err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// procStatus reads one field of /proc/<pid>/status, in kB.
func procStatus(t testing.TB, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func openFiles(pid int) int {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(fds)
}

// rawGet opens a connection, sends a GET for path and returns the connection unread.
func rawGet(t testing.TB, api, path string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(api, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
	return conn
}

// alive fails the test when p has exited.
func (p *proc) alive(t testing.TB) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("the process exited (%v):\n%s", err, p.out)
	default:
	}
}

// Under a file limit of 256, 300 idle connections once took every descriptor,
// and the next WAL segment etcd opened failed: the process exited. Now the
// connections past MAX_CONNS wait in the kernel's queue, and etcd writes on.
func TestHundredsOfIdleConnectionsUnderALowFileLimitLeaveWritesWorking(t *testing.T) {
	env := memberEnv(t.TempDir())
	p := startCmd(t, exec.Command("sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, binary), env).ready(t)
	pid := p.cmd.Process.Pid
	if limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid)); !strings.Contains(string(limits), "Max open files            256") {
		t.Fatalf("file limit not applied:\n%s", limits)
	}
	writer := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	value := bigValue(900 << 10)
	if code := put(t, writer, p.API+"/config/grande", value); code != 200 {
		t.Fatalf("first PUT: %d", code)
	}

	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 300 {
		idle = append(idle, rawGet(t, p.API, "/healthz"))
	}
	// Await the server taking what it will take: its descriptors stop growing.
	last := -1
	for n := openFiles(pid); n != last; n = openFiles(pid) {
		last = n
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("%d descriptors open with 300 idle connections", last)

	// 30 MB of writes: etcd opens a new WAL segment for each megabyte.
	for i := range 30 {
		if code := put(t, writer, p.API+"/config/grande", value); code != 200 {
			t.Fatalf("PUT %d with 300 idle connections: %d\n%s", i, code, p.out)
		}
	}
	p.alive(t)
	if n := openFiles(pid); n >= 250 {
		t.Fatalf("%d descriptors open: none left for etcd", n)
	}
	if strings.Contains(p.out.String(), "too many open files") {
		t.Fatalf("the process ran out of descriptors:\n%s", p.out)
	}
}

// A snapshot whose client stopped reading held a read of the backend open, and
// maintenance then waited for it with every read and write behind it.
func TestMaintenanceDuringAStalledSnapshotAnswersAndWritesGoOn(t *testing.T) {
	p := start(t, append(memberEnv(t.TempDir()), "REQUEST_TIMEOUT=2s")).ready(t)
	// About 27 MB of data: the snapshot outgrows every socket buffer between us.
	value := bigValue(900 << 10)
	for i := range 30 {
		if code := put(t, http.DefaultClient, fmt.Sprintf("%s/config/carga-%d", p.API, i), value); code != 200 {
			t.Fatalf("PUT %d: %d", i, code)
		}
	}
	conn := rawGet(t, p.API, "/cluster/snapshot")
	defer conn.Close()
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("snapshot: %q %v", status, err)
	}
	// ...and reads no more.

	client := &http.Client{Timeout: 10 * time.Second}
	began := time.Now()
	code, _ := requestWith[obj](t, client, "POST", p.API+"/cluster/manutencao", "")
	if took := time.Since(began); took > 3*time.Second || code != 409 {
		t.Fatalf("maintenance during a stalled snapshot: %d after %s, want 409 within REQUEST_TIMEOUT", code, took.Round(time.Millisecond))
	}
	for i := range 3 {
		began := time.Now()
		if code := put(t, client, p.API+"/config/depois", `{"valor":1}`); code != 200 || time.Since(began) > 2*time.Second {
			t.Fatalf("PUT %d after the maintenance request: %d in %s", i, code, time.Since(began))
		}
		if code, _ := requestWith[obj](t, client, "GET", p.API+"/config/depois", ""); code != 200 {
			t.Fatalf("GET %d after the maintenance request: %d", i, code)
		}
	}
}

// Event streams whose readers stopped reading once buffered every event for
// them (643 MB for four readers and 75 MB of writes). Now a stream that falls
// behind is closed: memory stays within a bound of the same run without them.
func TestStalledEventReadersCostBoundedMemoryAndAreClosed(t *testing.T) {
	value := bigValue(500 << 10)
	run := func(stalled int) (growthMB int) {
		p := start(t, append(memberEnv(t.TempDir()), "LOG_LEVEL=info")).ready(t)
		pid := p.cmd.Process.Pid
		type reader struct {
			conn net.Conn
			body io.Reader
		}
		var readers []reader
		for range stalled {
			conn := rawGet(t, p.API, "/eventos?prefixo=/config/app/")
			defer conn.Close()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("stream: %v %v", resp, err)
			}
			readers = append(readers, reader{conn, resp.Body})
		}
		before := procStatus(t, pid, "VmRSS")
		for i := range 150 {
			if code := put(t, http.DefaultClient, fmt.Sprintf("%s/config/evento-%d", p.API, i%10), value); code != 200 {
				t.Fatalf("PUT %d: %d", i, code)
			}
		}
		peak := procStatus(t, pid, "VmHWM")
		p.alive(t)
		// Each stalled stream was closed: what the kernel holds, then the end.
		for i, r := range readers {
			r.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.Copy(io.Discard, r.body); err != nil {
				t.Fatalf("stalled stream %d was not closed: %v", i, err)
			}
		}
		return (peak - before) / 1024
	}
	without := run(0)
	with := run(4)
	t.Logf("memory growth over 75 MB of writes: %d MB with 4 stalled streams, %d MB without", with, without)
	if with > without+128 {
		t.Fatalf("4 stalled streams cost %d MB more than none (%d against %d)", with-without, with, without)
	}
}

// A page of another origin cannot send writes (body or not), and on loopback
// without a token a Host that is not a loopback name is refused (DNS
// rebinding); curl, which sends no Origin, is unaffected.
func TestCrossSiteWritesAndForeignHostsAreRefused(t *testing.T) {
	p := start(t, append(memberEnv(t.TempDir()), "ALLOWED_HOSTS=meu-lab.local")).ready(t)
	port := strings.TrimPrefix(p.API, "http://127.0.0.1")
	send := func(method, path, body string, header ...string) int {
		t.Helper()
		req, _ := http.NewRequest(method, p.API+path, strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			if header[i] == "Host" {
				req.Host = header[i+1]
			} else {
				req.Header.Set(header[i], header[i+1])
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&e); resp.StatusCode >= 400 && (err != nil || e["erro"] == nil) {
			t.Fatalf("%s %s: %d without a JSON erro", method, path, resp.StatusCode)
		}
		return resp.StatusCode
	}
	user := `{"nome":"Ana"}`
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		header       []string
		want         int
	}{
		{"a form posted by another site", "POST", "/usuarios", user, []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://malicioso.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"a fetch from another origin", "POST", "/usuarios", user, []string{"Content-Type", "application/json", "Origin", "http://malicioso.example"}, 403},
		{"maintenance from another site, no body", "POST", "/cluster/manutencao", "", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"a body without Content-Type", "POST", "/usuarios", user, nil, 415},
		{"curl", "POST", "/usuarios", user, []string{"Content-Type", "application/json"}, 201},
		{"the dashboard itself", "POST", "/usuarios", user, []string{"Content-Type", "application/json", "Origin", p.API, "Sec-Fetch-Site", "same-origin"}, 201},
		{"a rebound name", "GET", "/usuarios", "", []string{"Host", "malicioso.example" + port}, 421},
		{"a rebound name, open route", "GET", "/healthz", "", []string{"Host", "malicioso.example"}, 421},
		{"localhost", "GET", "/usuarios", "", []string{"Host", "localhost" + port}, 200},
		{"a name in ALLOWED_HOSTS", "GET", "/usuarios", "", []string{"Host", "meu-lab.local" + port}, 200},
	} {
		if got := send(tc.method, tc.path, tc.body, tc.header...); got != tc.want {
			t.Errorf("%s: %s %s answered %d, want %d", tc.name, tc.method, tc.path, got, tc.want)
		}
	}

	// With a token, the token is the protection: any Host is served.
	withToken := start(t, append(memberEnv(t.TempDir()), "API_TOKEN=segredo")).ready(t)
	req, _ := http.NewRequest("GET", withToken.API+"/usuarios", nil)
	req.Host = "etcdapi.lab.example"
	req.Header.Set("Authorization", "Bearer segredo")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("Host checked even with API_TOKEN: %d", resp.StatusCode)
	}
}

// etcd ends the process on a fatal error (here: its WAL directory is gone when
// it must open the next segment). The reason reaches the log, and the
// ephemeral data directory is removed even then.
func TestAFatalEtcdErrorIsLoggedAndRemovesEphemeralData(t *testing.T) {
	p := start(t, append(memberEnv(""), "ETCD_EPHEMERAL=true")).ready(t)
	p.waitOutput(t, "data:")
	dir := ""
	for _, l := range strings.Split(p.out.String(), "\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(l), "data:"); ok {
			dir = strings.TrimSpace(d)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, "member", "wal")); err != nil {
		t.Fatal(err)
	}
	value := bigValue(900 << 10)
	for range 5 {
		put(t, &http.Client{Timeout: 10 * time.Second}, p.API+"/config/grande", value)
	}
	if code := p.exit(t, 15*time.Second); code == 0 {
		t.Fatalf("exit 0 after etcd lost its WAL:\n%s", p.out)
	}
	if out := p.out.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "component=etcd") || !strings.Contains(out, "wal") {
		t.Fatalf("the fatal error's reason is not in the log:\n%s", out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("ephemeral data dir %s left behind: %v", dir, err)
	}
}
