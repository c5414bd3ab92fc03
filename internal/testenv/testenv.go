// Package testenv starts what the tests need: free loopback ports, embedded
// members and real etcd servers from Debian's etcd-server package.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"etcdapi/store"
)

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// FreePort returns a loopback port below 32768 (outside Linux's ephemeral range)
// that nothing listens on and that this process has not handed out before.
func FreePort() int {
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		p := 20000 + rand.IntN(12000)
		if given[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		given[p] = true
		return p
	}
}

// URL is a loopback URL on a free port.
func URL() string { return fmt.Sprintf("http://127.0.0.1:%d", FreePort()) }

// StoreConfig is the store's default configuration on an ephemeral member with free ports.
func StoreConfig() store.Config {
	var cfg store.Config
	if err := envconfig.Process("etcdapi_test_unset", &cfg); err != nil {
		panic(err)
	}
	cfg.Ephemeral = true
	cfg.ListenClientURLs.Decode(URL())
	cfg.ListenPeerURLs.Decode(URL())
	cfg.LogLevel = "error"
	return cfg
}

// OpenStore starts an ephemeral embedded member for a test package's TestMain.
func OpenStore(cfg store.Config) *store.Store {
	st, err := store.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	return st
}

// Require fails the test when a dependency is missing and CI=true; elsewhere it skips.
func Require(t testing.TB, what, hint string) {
	t.Helper()
	msg := fmt.Sprintf("%s is missing (%s)", what, hint)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Etcd is a real etcd server process (Debian's etcd-server package).
type Etcd struct {
	Name, ClientURL, PeerURL, Dir string
	Args                          []string
	cmd                           *exec.Cmd
}

// NewEtcdCluster prepares n etcd members on free loopback ports; extra flags go to each.
func NewEtcdCluster(t testing.TB, n int, extra ...string) []*Etcd {
	return newEtcdCluster(t, n, "http", extra...)
}

// NewTLSEtcd prepares one etcd member that serves clients over TLS and asks them for certificates.
func NewTLSEtcd(t testing.TB, c Certs) *Etcd {
	return newEtcdCluster(t, 1, "https", "--cert-file", c.ServerCert, "--key-file", c.ServerKey,
		"--trusted-ca-file", c.CA, "--client-cert-auth")[0]
}

func newEtcdCluster(t testing.TB, n int, clientScheme string, extra ...string) []*Etcd {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		Require(t, "etcd", "apt-get install etcd-server")
	}
	members := make([]*Etcd, n)
	initial := ""
	for i := range members {
		m := &Etcd{Name: fmt.Sprintf("e%d", i), ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", clientScheme, FreePort()), PeerURL: URL(), Dir: t.TempDir()}
		if i > 0 {
			initial += ","
		}
		initial += m.Name + "=" + m.PeerURL
		members[i] = m
	}
	for _, m := range members {
		m.Args = append([]string{
			"--name", m.Name, "--data-dir", m.Dir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", initial, "--initial-cluster-token", "etcdapi-test",
			"--initial-cluster-state", "new", "--log-level", "error",
		}, extra...)
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.Kill()
		}
	})
	return members
}

// Start starts (or restarts, on its data directory) the member's process.
func (e *Etcd) Start(t testing.TB) {
	t.Helper()
	e.cmd = exec.Command("etcd", e.Args...)
	if testing.Verbose() {
		e.cmd.Stderr = os.Stderr
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// Kill stops the process with SIGKILL.
func (e *Etcd) Kill() {
	if e.cmd != nil && e.cmd.Process != nil {
		e.cmd.Process.Kill()
		e.cmd.Wait()
		e.cmd = nil
	}
}

// WaitHTTP polls url until it answers 200, failing the test after timeout.
func WaitHTTP(t testing.TB, client interface {
	Get(string) (*http.Response, error)
}, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s", url, timeout)
}

// Buffer collects output written from other goroutines (a process's, a logger's).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }
