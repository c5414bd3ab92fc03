package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"runtime/debug"

	"github.com/gin-gonic/gin"

	"etcdapi/store"
)

// ErrShuttingDown is the cause with which the process cancels every request's
// context when it shuts down (see main.go): a handler that waits (a lock's
// aguardar, a stream) ends at once, and fail answers it 503.
var ErrShuttingDown = errors.New("server shutting down")

// apiError is a client's mistake, answered as {"erro": msg, "campos": ...}.
type apiError struct {
	status int
	msg    string
	campos map[string]string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(msg string) *apiError { return &apiError{status: http.StatusBadRequest, msg: msg} }

// storeErrors maps each of the store's error kinds to a status and a message,
// and a typed error of that kind (a store.Refusal, a stale guard) to the
// fields it adds to the body.
var storeErrors = []struct {
	err    error
	status int
	msg    string
	more   func(error) gin.H
}{
	{store.ErrUserNotFound, http.StatusNotFound, "Usuário não encontrado", nil},
	{store.ErrConfigNotFound, http.StatusNotFound, "Configuração não encontrada", nil},
	{store.ErrNoHistory, http.StatusNotFound, "Nenhum histórico restante para esta configuração", nil},
	{store.ErrInstanceNotFound, http.StatusNotFound, "Instância não encontrada ou expirada: registre-a novamente", nil},
	{store.ErrLockNotFound, http.StatusNotFound, "Lock não encontrado: o recurso está livre", nil},
	{store.ErrEmailTaken, http.StatusConflict, "Email já utilizado por outro usuário", nil},
	{store.ErrLockHeld, http.StatusConflict, "Recurso já bloqueado", fields(heldBy)},
	{store.ErrNotHolder, http.StatusConflict, "O token informado não detém este lock", nil},
	{store.ErrNoLeader, http.StatusNotFound, "Nenhum líder eleito", nil},
	{store.ErrNotLeader, http.StatusConflict, "O token informado não é o do líder", nil},
	{store.ErrOtherLeader, http.StatusConflict, "Outro candidato lidera", fields(ledBy)},
	{store.ErrSemaphoreNotFound, http.StatusNotFound, "Ninguém ocupa este semáforo", nil},
	{store.ErrSlotNotFound, http.StatusNotFound, "Vaga não encontrada ou expirada", nil},
	{store.ErrNotOccupant, http.StatusConflict, "O token informado não ocupa uma vaga deste semáforo", nil},
	{store.ErrNoSlot, http.StatusConflict, "Sem vagas", fields(occupiedBy)},
	{store.ErrLimitMismatch, http.StatusBadRequest, "Dados inválidos", fields(limitInUse)},
	{store.ErrPlaceLost, http.StatusConflict, "Seu lugar na fila foi removido enquanto aguardava (a chave foi apagada ou o lease acabou): peça de novo", nil},
	{store.ErrUnreadable, http.StatusUnprocessableEntity, "O valor guardado nesta chave não foi escrito pelo etcdapi e não pode ser lido: corrija-o ou apague-o", nil},
	{store.ErrStaleGuard, http.StatusConflict, "Token de fencing obsoleto", fields(staleGuard)},
	{store.ErrStale, http.StatusPreconditionFailed, "Versão desatualizada: o recurso mudou desde o If-Match informado", nil},
	{store.ErrCompacted, http.StatusGone, "Revisão já compactada pelo etcd: recomece a leitura", nil},
	{store.ErrFutureRev, http.StatusBadRequest, "Revisão no futuro: o cursor ou desde nomeia uma revisão que o etcd ainda não tem", nil},
	{store.ErrNotEmbedded, http.StatusConflict, "Este processo não tem um membro etcd embutido", nil},
	{store.ErrUnavailable, http.StatusServiceUnavailable, "etcd indisponível ou sem quórum: tente novamente", nil},
	{store.ErrNoSpace, http.StatusInsufficientStorage, "Cota de espaço do etcd atingida: apague dados e compacte", nil},
}

// fields adapts what a typed store error adds to its answer to the table.
func fields[E error](f func(E) gin.H) func(error) gin.H {
	return func(err error) gin.H {
		var e E
		if errors.As(err, &e) {
			return f(e)
		}
		return nil
	}
}

// What a refusal adds to its answer: who holds what was asked for, where the
// caller stood in line (a lock's waiter only, an election's candidate always).
func heldBy(r *store.Refusal) gin.H {
	if r.Position > 0 {
		return gin.H{"holder": firstName(r), "posicao": r.Position}
	}
	return gin.H{"holder": firstName(r)}
}
func ledBy(r *store.Refusal) gin.H      { return gin.H{"lider": firstName(r), "posicao": r.Position} }
func occupiedBy(r *store.Refusal) gin.H { return gin.H{"ocupantes": r.Holders} }
func firstName(r *store.Refusal) string {
	if len(r.Holders) == 0 {
		return "" // it let go meanwhile
	}
	return r.Holders[0].Name
}
func limitInUse(r *store.Refusal) gin.H {
	return gin.H{"campos": map[string]string{"limite": fmt.Sprintf("deve ser %d, o limite usado pelos ocupantes atuais", r.Limit)}}
}

// fail answers err as JSON with the status its kind calls for.
func (s *server) fail(c *gin.Context, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		body := gin.H{"erro": ae.msg}
		if len(ae.campos) > 0 {
			body["campos"] = ae.campos
		}
		c.AbortWithStatusJSON(ae.status, body)
		return
	}
	// A wait the shutdown ended, whatever error the store made of it.
	if ctx := c.Request.Context(); errors.Is(context.Cause(ctx), ErrShuttingDown) {
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"erro": "Servidor encerrando: tente novamente em outro membro ou mais tarde"})
		return
	}
	for _, e := range storeErrors {
		if errors.Is(err, e.err) {
			body := gin.H{"erro": e.msg}
			if e.more != nil {
				maps.Copy(body, e.more(err))
			}
			c.AbortWithStatusJSON(e.status, body)
			return
		}
	}
	if errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil {
		c.Abort() // the client left; nobody reads an answer
		return
	}
	s.log.Error("internal error", "request_id", requestIDOf(c), "err", err)
	c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"erro": "Erro interno", "request_id": requestIDOf(c)})
}

// recoverPanics answers a panic as a JSON 500; the process lives on. Gin's
// own recovery would swallow http.ErrAbortHandler as if the client had left;
// here it goes on to net/http, which cuts the connection: a handler that
// fails after part of its answer is sent leaves the client a broken
// transfer, never a clean end of a truncated body.
func (s *server) recoverPanics(c *gin.Context) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler {
			panic(p)
		}
		s.log.Error("panic", "request_id", requestIDOf(c), "panic", p, "stack", string(debug.Stack()))
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"erro": "Erro interno", "request_id": requestIDOf(c)})
	}()
	c.Next()
}
