package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"etcdapi/server"
)

// Faults beyond crashes (SPEC §6): a member cut off from the others (every
// raft message dropped both ways, its process and API up) or frozen (SIGSTOP,
// a long GC or VM pause).

func (c *cluster) isolateMember(w http.ResponseWriter, r *http.Request) {
	c.fault(w, r, "ativo", "isolado", "Membro isolado: nenhuma mensagem raft passa entre ele e os outros", c.isolate)
}

func (c *cluster) reconnectMember(w http.ResponseWriter, r *http.Request) {
	c.fault(w, r, "isolado", "ativo", "Membro reconectado", c.mend)
}

func (c *cluster) pauseMember(w http.ResponseWriter, r *http.Request) {
	c.fault(w, r, "ativo", "pausado", "Membro pausado (SIGSTOP)", func(_ context.Context, m *member) error {
		return freeze(m.process())
	})
}

func (c *cluster) resumeMember(w http.ResponseWriter, r *http.Request) {
	c.fault(w, r, "pausado", "ativo", "Membro retomado (SIGCONT)", func(_ context.Context, m *member) error {
		return thaw(m.process())
	})
}

// fault moves the named member from state from to state to by doing act, or
// answers 409 when the member is not in state from. One fault at a time, and
// no member's lock is held while act talks to the members.
func (c *cluster) fault(w http.ResponseWriter, r *http.Request, from, to, msg string, act func(context.Context, *member) error) {
	m := c.member(w, r)
	if m == nil {
		return
	}
	c.faults.Lock()
	defer c.faults.Unlock()
	m.mu.Lock()
	state := m.state
	m.mu.Unlock()
	if state != from {
		writeJSON(w, http.StatusConflict, map[string]string{"erro": fmt.Sprintf("O membro %s está %s: a ação pede um membro %s", m.name, state, from)})
		return
	}
	// Not bound by the request: a fault half applied because its client left
	// would leave a member cut off with no state to undo it from.
	if err := act(context.WithoutCancel(r.Context()), m); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"erro": "Falha ao aplicar: " + err.Error()})
		return
	}
	m.mu.Lock()
	if m.state == from { // not stopped meanwhile
		m.state = to
	}
	m.mu.Unlock()
	c.suspect()
	writeJSON(w, http.StatusOK, map[string]string{"mensagem": msg, "nome": m.name, "estado": to})
}

// isolate cuts m off from every other member, on both sides of each link, as
// etcd's integration tests partition a member (InjectPartition).
func (c *cluster) isolate(ctx context.Context, m *member) error {
	return c.eachLink(ctx, m, "/demo/interno/cortar", true)
}

// mend lets raft messages flow again between m and the others.
func (c *cluster) mend(ctx context.Context, m *member) error {
	return c.eachLink(ctx, m, "/demo/interno/religar", true)
}

// eachLink sends path to every other running member naming m and, with self,
// to m naming every other member.
func (c *cluster) eachLink(ctx context.Context, m *member, path string, self bool) error {
	ids, err := c.memberIDs(ctx)
	if err != nil {
		return err
	}
	var others []string
	for name, id := range ids {
		if name != m.name {
			others = append(others, id)
		}
	}
	if self {
		if err := c.tell(ctx, m.api, path, others); err != nil {
			return err
		}
	}
	for _, o := range c.members {
		if o == m {
			continue
		}
		o.mu.Lock()
		running := o.state == "ativo" || o.state == "isolado"
		o.mu.Unlock()
		if running {
			c.tell(ctx, o.api, path, []string{ids[m.name]}) // a member down now mends by restarting
		}
	}
	return nil
}

// tell sends one internal fault command to a member's API.
func (c *cluster) tell(ctx context.Context, api, path string, ids []string) error {
	body, _ := json.Marshal(map[string][]string{"pares": ids})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", api+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.DemoSecretHeader, c.secret)
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s: %s", api, path, resp.Status)
	}
	return nil
}

// memberIDs maps each member's name to its etcd member id, asked once of the cluster.
func (c *cluster) memberIDs(ctx context.Context) (map[string]string, error) {
	c.mu.Lock()
	ids := c.ids
	c.mu.Unlock()
	if ids != nil {
		return ids, nil
	}
	info, err := c.clusterInfo(ctx, nil)
	if err != nil || len(info.Members) != len(c.members) {
		return nil, errors.New("a lista de membros do cluster não está completa")
	}
	ids = map[string]string{}
	for _, m := range info.Members {
		ids[m.Name] = m.ID
	}
	c.mu.Lock()
	c.ids = ids
	c.mu.Unlock()
	return ids, nil
}

// process is the member's current process.
func (m *member) process() *os.Process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd.Process
}
