package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"etcdapi/store"
)

type registration struct {
	Nome      string          `json:"nome" binding:"required,identifier,ne=registrar"`
	Endpoint  string          `json:"endpoint" binding:"required,http_url"`
	TTL       *int64          `json:"ttl" binding:"omitempty,min=5,max=3600"`
	Metadados json.RawMessage `json:"metadados"`
}

var registrationProblems = map[string]string{
	"nome":      "obrigatório: de 1 a 128 caracteres entre A-Z a-z 0-9 . _ -, e não \"registrar\" (a rota de registro)",
	"endpoint":  "obrigatório: uma URL absoluta http(s), como http://localhost:8080",
	"ttl":       "deve ser um número inteiro de segundos entre 5 e 3600",
	"metadados": "deve ser um objeto JSON",
}

func (s *server) registerInstance(c *gin.Context) {
	var r registration
	if err := readInto(c, &r, registrationProblems, false); err != nil {
		s.fail(c, err)
		return
	}
	if m := r.Metadados; len(m) > 0 && m[0] != '{' && string(m) != "null" {
		s.fail(c, &apiError{status: http.StatusBadRequest, msg: "Dados inválidos", campos: map[string]string{"metadados": registrationProblems["metadados"]}})
		return
	}
	ttl := int64(s.cfg.ServiceTTL.Seconds())
	if r.TTL != nil {
		ttl = *r.TTL
	}
	inst := store.Instance{
		ID:           uuid.NewString(),
		Endpoint:     r.Endpoint,
		Status:       "active",
		RegisteredAt: time.Now().UTC().Format(time.RFC3339Nano),
		TTL:          ttl,
	}
	if string(r.Metadados) != "null" {
		inst.Metadata = r.Metadados
	}
	if err := s.store.RegisterInstance(c.Request.Context(), r.Nome, inst); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"mensagem": "Serviço registrado", "chave": store.InstanceKey(r.Nome, inst.ID), "id": inst.ID, "ttl": ttl})
}

func (s *server) listInstances(c *gin.Context) {
	if c.Param("nome") == "registrar" { // the route, not a service: no service takes this name
		c.Header("Allow", http.MethodPost)
		c.JSON(http.StatusMethodNotAllowed, gin.H{"erro": "Método não permitido: registre uma instância com POST /servicos/registrar"})
		return
	}
	live, err := s.store.Instances(c.Request.Context(), c.Param("nome"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, live)
}

func (s *server) heartbeat(c *gin.Context) {
	left, err := s.store.Heartbeat(c.Request.Context(), c.Param("nome"), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"ttl_restante": left})
}

func (s *server) deregister(c *gin.Context) {
	if err := s.store.Deregister(c.Request.Context(), c.Param("nome"), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"mensagem": "Instância removida", "id": c.Param("id")})
}

func (s *server) listServices(c *gin.Context) {
	all, err := s.store.Services(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	// Another client's instances under /services/registrar/ cannot be read
	// here (GET /servicos/registrar is the route's 405): not listed either.
	all = slices.DeleteFunc(all, func(sc store.ServiceCount) bool { return sc.Name == "registrar" })
	c.JSON(http.StatusOK, all)
}
