package server

import (
	"context"
	"errors"
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

// storeErrors maps each of the store's error kinds to a status and a message.
var storeErrors = []struct {
	err    error
	status int
	msg    string
}{
	{store.ErrUserNotFound, http.StatusNotFound, "Usuário não encontrado"},
	{store.ErrConfigNotFound, http.StatusNotFound, "Configuração não encontrada"},
	{store.ErrNoHistory, http.StatusNotFound, "Nenhum histórico restante para esta configuração"},
	{store.ErrInstanceNotFound, http.StatusNotFound, "Instância não encontrada ou expirada: registre-a novamente"},
	{store.ErrLockNotFound, http.StatusNotFound, "Lock não encontrado: o recurso está livre"},
	{store.ErrEmailTaken, http.StatusConflict, "Email já utilizado por outro usuário"},
	{store.ErrLockHeld, http.StatusConflict, "Recurso já bloqueado"},
	{store.ErrNotHolder, http.StatusConflict, "O token informado não detém este lock"},
	{store.ErrNoLeader, http.StatusNotFound, "Nenhum líder eleito"},
	{store.ErrNotLeader, http.StatusConflict, "O token informado não é o do líder"},
	{store.ErrSemaphoreNotFound, http.StatusNotFound, "Ninguém ocupa este semáforo"},
	{store.ErrSlotNotFound, http.StatusNotFound, "Vaga não encontrada ou expirada"},
	{store.ErrNotOccupant, http.StatusConflict, "O token informado não ocupa uma vaga deste semáforo"},
	{store.ErrPlaceLost, http.StatusConflict, "Seu lugar na fila foi removido enquanto aguardava (a chave foi apagada ou o lease acabou): peça de novo"},
	{store.ErrUnreadable, http.StatusUnprocessableEntity, "O valor guardado nesta chave não foi escrito pelo etcdapi e não pode ser lido: corrija-o ou apague-o"},
	{store.ErrStale, http.StatusPreconditionFailed, "Versão desatualizada: o recurso mudou desde o If-Match informado"},
	{store.ErrCompacted, http.StatusGone, "Revisão já compactada pelo etcd: recomece a leitura"},
	{store.ErrFutureRev, http.StatusBadRequest, "Revisão no futuro: o cursor ou desde nomeia uma revisão que o etcd ainda não tem"},
	{store.ErrUnavailable, http.StatusServiceUnavailable, "etcd indisponível ou sem quórum: tente novamente"},
	{store.ErrNoSpace, http.StatusInsufficientStorage, "Cota de espaço do etcd atingida: apague dados e compacte"},
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
			c.AbortWithStatusJSON(e.status, gin.H{"erro": e.msg})
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
