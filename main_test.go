package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdapi/internal/testenv"
)

// binary is etcdapi built once for the tests that need a real process (exit codes, signals, kills).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "etcdapi-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "etcdapi")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building etcdapi: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// output collects a process's output; exec copies into it from another goroutine.
type output = testenv.Buffer

// proc is a running etcdapi process.
type proc struct {
	cmd    *exec.Cmd
	out    *output
	API    string
	Client string
	done   chan error
}

// memberEnv is the environment of an embedded member on free ports in dir.
func memberEnv(dir string) []string {
	return []string{
		"HTTP_ADDR=127.0.0.1:" + fmt.Sprint(testenv.FreePort()),
		"ETCD_DATA_DIR=" + filepath.Join(dir, "data"),
		"ETCD_LISTEN_CLIENT_URLS=" + testenv.URL(),
		"ETCD_LISTEN_PEER_URLS=" + testenv.URL(),
		"LOG_LEVEL=warn",
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// start runs the binary with env (on top of a clean environment) and does not wait.
func start(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binary, args...), env)
}

// startCmd runs cmd, a command that execs the binary, as start does.
func startCmd(t testing.TB, cmd *exec.Cmd, env []string) *proc {
	t.Helper()
	p := &proc{out: new(output), done: make(chan error, 1), cmd: cmd}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.API = "http://" + envValue(env, "HTTP_ADDR")
	p.Client = envValue(env, "ETCD_LISTEN_CLIENT_URLS")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("etcdapi output:\n%s", p.out)
		}
	})
	return p
}

// exit waits at most d for the process to end, and returns its exit code.
func (p *proc) exit(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		p.done <- nil // for the cleanup
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("still running after %s:\n%s", d, p.out)
		return 0
	}
}

// waitOutput waits until the process has printed want.
func (p *proc) waitOutput(t testing.TB, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q:\n%s", want, p.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *proc) ready(t testing.TB) *proc {
	t.Helper()
	testenv.WaitHTTP(t, http.DefaultClient, p.API+"/healthz", 30*time.Second)
	return p
}

func TestRunKeepsUsersAcrossARestartOnTheSameDataDir(t *testing.T) {
	env := memberEnv(t.TempDir())
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	api := "http://" + envValue(env, "HTTP_ADDR")
	serve := func() (context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, nil, io.Discard, io.Discard) }()
		testenv.WaitHTTP(t, http.DefaultClient, api+"/healthz", 30*time.Second)
		return cancel, done
	}

	stop, done := serve()
	code, created := request[obj](t, "POST", api+"/usuarios", `{"nome":"Persistente","email":"p@email.com"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["id"].(string)
	// etcdctl's view: the user under /users/ on the member's client URL.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{envValue(env, "ETCD_LISTEN_CLIENT_URLS")}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(context.Background(), "/users/", clientv3.WithPrefix())
	cli.Close()
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), "Persistente") {
		t.Fatalf("etcd client view: %v %v", resp, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}

	stop, done = serve()
	defer func() { stop(); <-done }()
	if code, got := request[obj](t, "GET", api+"/usuarios/"+id, ""); code != 200 || got["nome"] != "Persistente" {
		t.Fatalf("after restart: %d %v", code, got)
	}
}

func TestSIGTERMShutsDownCleanlyAndQuietly(t *testing.T) {
	p := start(t, memberEnv(t.TempDir())).ready(t)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.out)
	}
	// The banner and one shutdown line: etcd's own noise is filtered.
	if lines := strings.Count(p.out.String(), "\n"); lines > 6 || !strings.Contains(p.out.String(), "shut down") {
		t.Fatalf("output of a clean start and stop:\n%s", p.out)
	}
}

// An open event stream and a lock waiter must not hold the shutdown: the
// stream ends, the waiter gets a 503, and the process is gone within a second.
func TestSIGTERMEndsStreamsAndAnswersWaitersAtOnce(t *testing.T) {
	p := start(t, memberEnv(t.TempDir())).ready(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{p.Client}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// A stream, open once its first comment arrived.
	stream, err := http.Get(p.API + "/eventos?prefixo=/config/app/")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	first := make([]byte, len(": etcdapi"))
	if _, err := io.ReadFull(stream.Body, first); err != nil {
		t.Fatalf("stream: %v", err)
	}
	streamEnded := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, stream.Body); streamEnded <- err }()

	// A lock held, and a waiter: it is waiting once its key is in the line.
	if code, got := request[obj](t, "POST", p.API+"/lock/turno", `{"holder":"a","ttl":60}`); code != 200 {
		t.Fatalf("acquire: %d %v", code, got)
	}
	type answer struct {
		code int
		body obj
		err  error
	}
	waiter := make(chan answer, 1)
	go func() {
		resp, err := http.Post(p.API+"/lock/turno", "application/json", strings.NewReader(`{"holder":"b","aguardar":30}`))
		if err != nil {
			waiter <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var body obj
		err = json.NewDecoder(resp.Body).Decode(&body)
		waiter <- answer{resp.StatusCode, body, err}
	}()
	for deadline := time.Now().Add(5 * time.Second); ; {
		line, err := cli.Get(context.Background(), "/locks-fila/turno/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && line.Count == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiter never started waiting: %v %v", line, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	began := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	code := p.exit(t, 5*time.Second)
	took := time.Since(began)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.out)
	}
	if took > time.Second {
		t.Fatalf("shutdown took %s with a stream and a waiter open, want under 1s:\n%s", took, p.out)
	}
	t.Logf("shut down in %s", took.Round(time.Millisecond))
	if a := <-waiter; a.err != nil || a.code != 503 || a.body["erro"] == nil {
		t.Fatalf("waiter: %d %v %v, want a 503 with erro", a.code, a.body, a.err)
	}
	select {
	case <-streamEnded:
	case <-time.After(time.Second):
		t.Fatal("the event stream is still open after the process exited")
	}
	if strings.Contains(p.out.String(), "cut short") {
		t.Fatalf("shutdown waited for its limit:\n%s", p.out)
	}
}

func TestEphemeralRemovesItsDataDirOnExit(t *testing.T) {
	env := append(memberEnv(""), "ETCD_EPHEMERAL=true")
	p := start(t, env).ready(t)
	p.waitOutput(t, "data:")
	dir := ""
	for _, l := range strings.Split(p.out.String(), "\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(l), "data:"); ok {
			dir = strings.TrimSpace(d)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "member")); err != nil {
		t.Fatalf("ephemeral data dir %q: %v\n%s", dir, err, p.out)
	}
	p.cmd.Process.Signal(os.Interrupt)
	p.exit(t, 15*time.Second)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("ephemeral data dir left behind: %v", err)
	}
}

func TestFailsFastWithOneClearLine(t *testing.T) {
	dir := t.TempDir()
	running := start(t, memberEnv(dir)).ready(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenURL := "http://" + taken.Addr().String()

	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"data dir in use", memberEnv(dir), "in use by another etcdapi"},
		{"HTTP port taken", append(memberEnv(t.TempDir()), "HTTP_ADDR="+taken.Addr().String()), "address already in use"},
		{"client port taken", append(memberEnv(t.TempDir()), "ETCD_LISTEN_CLIENT_URLS="+takenURL), "address already in use"},
		{"peer port taken", append(memberEnv(t.TempDir()), "ETCD_LISTEN_PEER_URLS="+takenURL), "address already in use"},
		{"member never ready", func() []string {
			env := memberEnv(t.TempDir())
			peer := envValue(env, "ETCD_LISTEN_PEER_URLS")
			return append(env, "STARTUP_TIMEOUT=2s", "ETCD_INITIAL_CLUSTER=default="+peer+",ghost="+testenv.URL())
		}(), "not ready within STARTUP_TIMEOUT"},
		{"external cluster unreachable", append(memberEnv(""), "ETCD_ENDPOINTS="+testenv.URL()), "does not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			p := start(t, tc.env)
			if code := p.exit(t, 5*time.Second); code == 0 {
				t.Fatalf("exit 0:\n%s", p.out)
			}
			if !strings.Contains(p.out.String(), tc.want) {
				t.Fatalf("output lacks %q:\n%s", tc.want, p.out)
			}
			t.Logf("exited in %s: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(p.out.String()))
		})
	}
	if code, _ := request[obj](t, "GET", running.API+"/healthz", ""); code != 200 {
		t.Fatal("the running process was disturbed")
	}
}

func TestInvalidSettingsExit2NamingTheVariable(t *testing.T) {
	for _, kv := range []string{"REQUEST_TIMEOUT=abc", "ETCD_LISTEN_CLIENT_URLS=ftp://x", "ETCD_ADVERTISE_CLIENT_URLS=not a url", "MAX_BODY_BYTES=big", "ETCD_INITIAL_CLUSTER_STATE=old", "LOG_LEVEL=loud", "CORS_ORIGINS=painel.exemplo.com", "CORS_ORIGINS=http://a.example/caminho", "MAX_STREAMS=0"} {
		p := start(t, []string{kv})
		if code := p.exit(t, 5*time.Second); code != 2 {
			t.Fatalf("%s: exit %d:\n%s", kv, code, p.out)
		}
		name, _, _ := strings.Cut(kv, "=")
		if out := strings.TrimSpace(p.out.String()); strings.Count(out, "\n") > 0 || !strings.Contains(out, name) {
			t.Fatalf("%s: want one line naming %s, got:\n%s", kv, name, out)
		}
	}
}

func TestHelpPrintsEverySettingAndVersionPrintsTheVersion(t *testing.T) {
	p := start(t, nil, "-h")
	p.exit(t, 5*time.Second)
	for _, name := range []string{"HTTP_ADDR", "API_TOKEN", "ETCD_ENDPOINTS", "ETCD_DATA_DIR", "ETCD_EPHEMERAL", "ETCD_JOIN", "REQUEST_TIMEOUT", "STARTUP_TIMEOUT", "SERVICE_TTL", "LOCK_TTL", "MAX_BODY_BYTES", "LOG_FORMAT", "CORS_ORIGINS", "127.0.0.1:5000"} {
		if !strings.Contains(p.out.String(), name) {
			t.Errorf("-h lacks %s", name)
		}
	}
	p = start(t, nil, "version")
	p.exit(t, 5*time.Second)
	if !strings.Contains(p.out.String(), "etcd 3.7") {
		t.Fatalf("version: %s", p.out)
	}
}

func TestDotEnvIsReadAndTheEnvironmentWins(t *testing.T) {
	env := memberEnv(t.TempDir())
	dotenvDir := t.TempDir()
	port := testenv.FreePort()
	os.WriteFile(filepath.Join(dotenvDir, ".env"), []byte(fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d\nETCD_DATA_DIR=%s\nLOG_LEVEL=warn\n", port, filepath.Join(dotenvDir, "from-dotenv"))), 0o600)
	cmd := exec.Command(binary)
	cmd.Dir = dotenvDir
	// The environment sets its own data dir; HTTP_ADDR comes from .env only.
	cmd.Env = []string{"ETCD_DATA_DIR=" + envValue(env, "ETCD_DATA_DIR"), "ETCD_LISTEN_CLIENT_URLS=" + envValue(env, "ETCD_LISTEN_CLIENT_URLS"), "ETCD_LISTEN_PEER_URLS=" + envValue(env, "ETCD_LISTEN_PEER_URLS")}
	out := new(bytes.Buffer)
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	testenv.WaitHTTP(t, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/healthz", port), 30*time.Second)
	if _, err := os.Stat(filepath.Join(envValue(env, "ETCD_DATA_DIR"), "member")); err != nil {
		t.Fatalf("environment did not win over .env: %v\n%s", err, out)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

var interrupt = os.Interrupt

func decodeInto(resp *http.Response, v any) { json.NewDecoder(resp.Body).Decode(v) }

type obj = map[string]any

// request sends body as JSON ("" for none) and decodes the answer into a T.
func request[T any](t testing.TB, method, url, body string) (int, T) {
	t.Helper()
	return requestWith[T](t, http.DefaultClient, method, url, body)
}

// requestWith is request through client.
func requestWith[T any](t testing.TB, client *http.Client, method, url, body string) (int, T) {
	t.Helper()
	var v T
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

func TestFlagsWinOverTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	env := memberEnv(dir) // HTTP_ADDR and ETCD_DATA_DIR that the flags override
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	byFlag := filepath.Join(dir, "by-flag")
	p := start(t, env, "--http-addr", addr, "--data-dir", byFlag, "--name", "flagged", "--request-timeout=3s", "--ephemeral=false")
	testenv.WaitHTTP(t, http.DefaultClient, "http://"+addr+"/healthz", 30*time.Second)
	if _, err := os.Stat(filepath.Join(byFlag, "member")); err != nil {
		t.Fatalf("--data-dir did not win over ETCD_DATA_DIR: %v\n%s", err, p.out)
	}
	if _, c := request[obj](t, "GET", "http://"+addr+"/cluster", ""); c["lider"] != "flagged" {
		t.Fatalf("--name: %v", c)
	}
}

func TestUnknownFlagOrBadFlagValueExits2NamingTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "-nope"},
		{[]string{"--request-timeout", "abc"}, "--request-timeout"},
		{[]string{"--listen-client-urls=ftp://x"}, "--listen-client-urls"},
		{[]string{"--initial-cluster-state", "old"}, "--initial-cluster-state"},
		{[]string{"--api-log-format", "xml"}, "--api-log-format"},
		{[]string{"--quota-backend-bytes", "big"}, "--quota-backend-bytes"},
		{[]string{"stray"}, "stray"},
	} {
		p := start(t, nil, tc.args...)
		if code := p.exit(t, 5*time.Second); code != 2 {
			t.Fatalf("%v: exit %d:\n%s", tc.args, code, p.out)
		}
		if out := strings.TrimSpace(p.out.String()); strings.Count(out, "\n") > 0 || !strings.Contains(out, tc.want) {
			t.Fatalf("%v: want one line naming %s, got:\n%s", tc.args, tc.want, out)
		}
	}
}

func TestHelpListsEachSettingOnceWithFlagVariableAndDefault(t *testing.T) {
	p := start(t, nil, "-h")
	p.exit(t, 5*time.Second)
	out := p.out.String()
	for _, s := range allSettings() {
		lines := 0
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[1] == s.Var {
				lines++
				if f[0] != "--"+s.Flag || (s.Default != "" && (len(f) < 3 || f[2] != s.Default)) {
					t.Errorf("line for %s: %q", s.Var, l)
				}
			}
		}
		if lines != 1 {
			t.Errorf("%s on %d lines of -h, want 1", s.Var, lines)
		}
	}
	for _, flag := range []string{"--data-dir", "--name", "--listen-client-urls", "--advertise-client-urls", "--listen-peer-urls", "--initial-advertise-peer-urls", "--initial-cluster", "--initial-cluster-state", "--initial-cluster-token", "--quota-backend-bytes", "--auto-compaction-retention", "--log-level", "--endpoints", "--http-addr", "--request-timeout", "--service-ttl", "demo"} {
		if !strings.Contains(out, flag+" ") && !strings.Contains(out, flag+"\t") {
			t.Errorf("-h lacks %s", flag)
		}
	}
}

func TestConfigExampleListsEverySettingWithItsDefault(t *testing.T) {
	example, err := os.ReadFile("config.example.env")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range allSettings() {
		want := s.Var + "=" + s.Default
		if !strings.Contains("\n"+string(example)+"\n", "\n"+want+"\n") {
			t.Errorf("config.example.env lacks the line %q", want)
		}
	}
}
