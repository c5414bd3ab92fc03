// Package demo runs a whole etcd cluster from one command: N children of this
// same binary, each an etcdapi process with its embedded member on loopback,
// behind a supervisor that serves the dashboard, stops and starts members, and
// passes every API route to a live member.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"etcdapi/server"
)

// Config is what the supervisor needs of etcdapi's settings.
type Config struct {
	Members        int            // odd, 1..7
	Addr           string         // HTTP_ADDR: where the supervisor listens
	Token          string         // API_TOKEN: the children inherit it, /demo/membros needs it
	StartupTimeout time.Duration  // bound on a member answering /readyz
	MaxBodyBytes   int64          // request bodies are kept to retry them on the next member
	MaxConns       int            // most connections at once (SPEC §7), as for a member
	CORSOrigins    server.Origins // CORS_ORIGINS: other origins whose pages may send writes
	AllowedHosts   []string       // ALLOWED_HOSTS: more Host names served on loopback without a token
}

// Member timing: a quick election, so a stopped leader is replaced within a second or so.
const (
	heartbeatMs = "50"
	electionMs  = "500"
)

// Run starts the cluster, serves until ctx ends, then kills every member and removes its data.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	began := time.Now()
	// Listen first: a port in use fails at once.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "etcdapi-demo-")
	if err != nil {
		return err
	}
	c := &cluster{cfg: cfg, exe: exe, root: root, recheck: make(chan struct{}, 1), log: stderr}
	defer c.stop()
	if err := c.prepare(); err != nil {
		return err
	}

	errs := make(chan error, cfg.Members)
	for _, m := range c.members {
		go func() { errs <- c.start(ctx, m) }()
	}
	for range c.members {
		if err := <-errs; err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C while the members start: not a failure to report
			}
			return err
		}
	}

	go c.watchHealth(ctx)
	if c.cfg.MaxConns > 0 {
		ln = netutil.LimitListener(ln, c.cfg.MaxConns)
	}
	srv := server.HTTPServer(c.handler())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c.banner(stdout, "http://"+ln.Addr().String(), time.Since(began))

	select {
	case err := <-served:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	// The data is temporary: kill the members rather than wait for them.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	srv.Close()
	c.stop()
	fmt.Fprintln(stdout, "etcdapi demo: stopped, data removed")
	return nil
}

// cluster is the supervisor's view of its members.
type cluster struct {
	cfg     Config
	exe     string
	root    string // every member's data directory is under it
	members []*member
	next    int // the member tried first by the next proxied request
	secret  string
	ids     map[string]string // member name -> etcd member id (hex), once known
	faults  sync.Mutex        // one isolar/reconectar/pausar/retomar at a time
	mu      sync.Mutex
	stopped sync.Once
	closing atomic.Bool   // stop has begun: no member starts any more
	recheck chan struct{} // asks watchHealth for a round now (suspect)
	log     io.Writer     // the supervisor's terminal (logf)
	// suspected is when the supervisor last made a fault (suspect), in Unix ns.
	suspected atomic.Int64
}

// member is one child process and where it listens.
type member struct {
	name, dir         string
	api, client, peer string // URLs
	args              []string
	out               *tail
	mu                sync.Mutex
	cmd               *exec.Cmd
	state             string        // "ativo", "iniciando", "parando", "parado", "isolado" or "pausado"
	unready           bool          // its last /readyz failed (watchHealth)
	exited            chan struct{} // closed when the current process has ended
}

// prepare picks free loopback ports and names for every member.
func (c *cluster) prepare() error {
	token := make([]byte, 4)
	rand.Read(token)
	c.secret = rand.Text() // the members' DEMO_SECRET: only this supervisor may cut them off
	var initial []string
	// Every member's ports at once: ports released between members could be
	// handed out again to the next one.
	all, err := freePorts(3 * c.cfg.Members)
	if err != nil {
		return err
	}
	for i := range c.cfg.Members {
		ports := all[3*i:]
		m := &member{
			name:   fmt.Sprintf("n%d", i+1),
			api:    fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
			client: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
			peer:   fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
			state:  "parado",
			out:    new(tail),
		}
		m.dir = c.root + "/" + m.name
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	for _, m := range c.members {
		// On a restart the data directory exists and etcd ignores the initial-cluster flags.
		m.args = []string{
			"--name", m.name, "--data-dir", m.dir,
			"--http-addr", strings.TrimPrefix(m.api, "http://"),
			"--listen-client-urls", m.client, "--listen-peer-urls", m.peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "etcdapi-demo-" + hex.EncodeToString(token),
			"--heartbeat-interval", heartbeatMs, "--election-timeout", electionMs,
			"--startup-timeout", c.cfg.StartupTimeout.String(),
			"--log-level", "error", "--api-log-level", "error",
		}
		if _, set := os.LookupEnv("REQUEST_TIMEOUT"); !set {
			// A write forwarded to a leader that just died gets its 503 after 2 s,
			// not 5 (the supervisor gives it back: its outcome is unknown).
			m.args = append(m.args, "--request-timeout", "2s")
		}
	}
	return nil
}

// freePorts asks the kernel for n free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // held until all are picked, so they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var (
	errRunning = errors.New("o membro já está em execução")
	errStopped = errors.New("o membro já está parado")
	errClosing = errors.New("o demo está encerrando")
)

// start runs a member's process and waits until it answers /readyz.
func (c *cluster) start(ctx context.Context, m *member) error {
	m.mu.Lock()
	if m.state != "parado" {
		m.mu.Unlock()
		return errRunning
	}
	// Checked under the member's lock, which stop's kill takes after setting
	// closing: a start racing with Ctrl-C either is killed or never begins,
	// and leaves no child or data directory behind.
	if c.closing.Load() {
		m.mu.Unlock()
		return errClosing
	}
	cmd := exec.Command(c.exe, m.args...)
	cmd.Dir = c.root // the demo's own directory; settings, .env's included, come through childEnv
	cmd.Env = append(childEnv(), "DEMO_SECRET="+c.secret)
	cmd.Stdout, cmd.Stderr = m.out, m.out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("member %s: %w", m.name, err)
	}
	exited := make(chan struct{})
	m.cmd, m.state, m.exited = cmd, "iniciando", exited
	m.mu.Unlock()
	go func() {
		cmd.Wait()
		m.mu.Lock()
		if m.cmd == cmd {
			m.state = "parado"
		}
		m.mu.Unlock()
		close(exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartupTimeout)
	defer cancel()
	if err := waitReady(ctx, m.api+"/readyz", c.cfg.Token, exited); err != nil {
		c.kill(m)
		return fmt.Errorf("member %s not ready within STARTUP_TIMEOUT (%s): %v\n%s", m.name, c.cfg.StartupTimeout, err, m.out)
	}
	m.mu.Lock()
	if m.cmd == cmd && m.state == "iniciando" {
		m.state = "ativo"
	}
	m.mu.Unlock()
	return nil
}

// waitReady polls url until it answers 200, the process exits, or ctx ends.
func waitReady(ctx context.Context, url, token string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("the process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill stops a member with SIGKILL (a real crash) and waits for its end.
func (c *cluster) kill(m *member) error {
	m.mu.Lock()
	if m.state == "parado" || m.state == "parando" {
		m.mu.Unlock()
		return errStopped
	}
	// "parado" only once the process is gone (set by start's Wait): until then a
	// start would find the data dir and ports still taken.
	cmd, exited, isolated := m.cmd, m.exited, m.state == "isolado"
	m.state = "parando"
	m.mu.Unlock()
	cmd.Process.Kill()
	<-exited
	if isolated {
		c.eachLink(context.Background(), m, "/demo/interno/religar", false) // the others take it back when it starts again
	}
	return nil
}

// stop kills every member and removes the data directories, once.
func (c *cluster) stop() {
	c.stopped.Do(func() {
		c.closing.Store(true)
		var wg sync.WaitGroup
		for _, m := range c.members {
			wg.Go(func() { c.kill(m) })
		}
		wg.Wait()
		os.RemoveAll(c.root)
	})
}

// childEnv is the supervisor's environment without the settings the demo sets
// itself by flag, or that would point a member elsewhere (ETCD_ENDPOINTS, ETCD_JOIN...).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "HTTP_ADDR=") || strings.HasPrefix(kv, "TLS_") || strings.HasPrefix(kv, "DEMO_SECRET=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (c *cluster) banner(w io.Writer, url string, took time.Duration) {
	fmt.Fprintf(w, "etcdapi demo: a cluster of %d members, ready in %s (Ctrl-C stops it and removes its data)\n", len(c.members), took.Round(time.Millisecond))
	fmt.Fprintf(w, "  open:  %s/ui/\n  API:   %s (passed to a live member)\n  data:  %s\n", url, url, c.root)
	for _, m := range c.members {
		fmt.Fprintf(w, "  %s:    API %s  etcd %s  peer %s\n", m.name, m.api, m.client, m.peer)
	}
	var clients []string
	for _, m := range c.members {
		clients = append(clients, m.client)
	}
	fmt.Fprintf(w, "  etcdctl --endpoints=%s member list -w table\n", strings.Join(clients, ","))
}

// tail keeps the last few KiB a member printed, to explain a failed start.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { t.mu.Lock(); defer t.mu.Unlock(); return string(t.buf) }
