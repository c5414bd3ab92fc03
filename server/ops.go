package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// index lists the routes, as the original's home page did; a browser goes to the dashboard.
func (s *server) index(c *gin.Context) {
	if strings.Contains(c.GetHeader("Accept"), "text/html") {
		c.Redirect(http.StatusFound, "/ui/")
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"mensagem": "etcdapi: API REST sobre etcd",
		"endpoints": gin.H{
			"usuarios": []string{"POST /usuarios", "GET /usuarios", "GET /usuarios/{id}", "PUT /usuarios/{id}", "PATCH /usuarios/{id}", "DELETE /usuarios/{id}", "GET /usuarios/buscar?nome="},
			"config":   []string{"GET /config", "GET /config/{chave}", "PUT /config/{chave}", "DELETE /config/{chave}", "GET /config/{chave}/historico", "POST /transacao"},
			"servicos": []string{"POST /servicos/registrar", "GET /servicos", "GET /servicos/{nome}", "POST /servicos/{nome}/{id}/heartbeat", "DELETE /servicos/{nome}/{id}"},
			"locks":    []string{"GET /lock", "POST /lock/{recurso}", "GET /lock/{recurso}", "DELETE /lock/{recurso}", "POST /lock/{recurso}/renovar"},
			"eventos":  []string{"GET /eventos?prefixo=/config/app/"},
			"operacao": []string{"GET /healthz", "GET /readyz", "GET /cluster", "GET /cluster/snapshot", "POST /cluster/manutencao", "GET /metrics", "GET /openapi.json", "GET /ui/"},
		},
	})
}

func (s *server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

func (s *server) readyz(c *gin.Context) {
	if err := s.store.Ready(c.Request.Context()); err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "indisponível", "erro": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "pronto"})
}

func (s *server) cluster(c *gin.Context) {
	info, err := s.store.Cluster(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, info)
}

// snapshot streams an etcd snapshot: etcdapi restore FILE builds a data directory from it.
// A client that stops reading it is cut off by the write deadline: an open
// snapshot holds a read of etcd's backend, which maintenance would wait for.
func (s *server) snapshot(c *gin.Context) {
	if !s.heavy.TryRLock() {
		s.fail(c, &apiError{status: http.StatusConflict, msg: "Manutenção em andamento: tente o snapshot em instantes"})
		return
	}
	defer s.heavy.RUnlock()
	http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", `attachment; filename="etcdapi.snapshot.db"`)
	if err := s.store.Snapshot(c.Request.Context(), NewDeadlineWriter(c.Writer, snapshotWrite)); err != nil {
		if !c.Writer.Written() {
			c.Header("Content-Disposition", "")
			s.fail(c, err)
			return
		}
		panic(http.ErrAbortHandler) // a truncated snapshot must not look complete
	}
}

// maintenance compacts, defragments and disarms etcd's space alarm: after
// deleting data, it brings writes back once the quota was reached.
// It is refused while a snapshot is being sent: defragmenting waits for the
// snapshot's read to end, and every read and write would wait behind it.
func (s *server) maintenance(c *gin.Context) {
	if !s.heavy.TryLock() {
		s.fail(c, &apiError{status: http.StatusConflict, msg: "Snapshot ou manutenção em andamento: tente novamente quando terminar"})
		return
	}
	defer s.heavy.Unlock()
	m, err := s.store.Reclaim(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"mensagem": "Espaço recuperado", "revisao_compactada": m.CompactedAt, "tamanho_db_antes": m.SizeBefore, "tamanho_db_depois": m.SizeAfter})
}
