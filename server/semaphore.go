package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

type slotRequest struct {
	Holder   string   `json:"holder" binding:"max=200"`
	Limite   int64    `json:"limite" binding:"required,min=1,max=1000"`
	TTL      *int64   `json:"ttl" binding:"omitempty,min=5,max=3600"`
	Aguardar *float64 `json:"aguardar" binding:"omitempty,min=0,max=60"`
}

var semaphoreProblems = map[string]string{
	"holder":   "deve ser um texto de até 200 caracteres",
	"limite":   "obrigatório: um número inteiro de vagas entre 1 e 1000",
	"ttl":      ttlProblem,
	"aguardar": waitProblem,
	"token":    "obrigatório: o token (inteiro positivo) recebido ao obter a vaga",
}

// acquireSlot takes one of limite places, waiting in line up to aguardar.
func (s *server) acquireSlot(c *gin.Context) {
	var r slotRequest
	if err := readInto(c, &r, semaphoreProblems, false); err != nil {
		s.fail(c, err)
		return
	}
	if r.Holder == "" {
		r.Holder = "unknown" // as locks do
	}
	release, ok := s.wait(c, seconds(r.Aguardar))
	if !ok {
		return
	}
	defer release()
	ttl := ttlOr(r.TTL, s.cfg.LockTTL)
	token, err := s.store.AcquireSlot(c.Request.Context(), c.Param("nome"), r.Holder, r.Limite, ttl, seconds(r.Aguardar))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"mensagem": "Vaga obtida", "semaforo": c.Param("nome"), "holder": r.Holder, "token": token, "limite": r.Limite, "ttl": ttl, "expira_em": expiresAt(ttl)})
}

func (s *server) getSemaphore(c *gin.Context) {
	sem, err := s.store.GetSemaphore(c.Request.Context(), c.Param("nome"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, sem)
}

func (s *server) listSemaphores(c *gin.Context) {
	all, err := s.store.Semaphores(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, all)
}
