package server

import (
	"net/http"
	"strings"

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
			"config":   []string{"GET /config", "GET /config/{chave}", "PUT /config/{chave}", "DELETE /config/{chave}", "GET /config/{chave}/historico"},
			"operacao": []string{"GET /healthz", "GET /readyz"},
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
