package server

import "github.com/gin-gonic/gin"

// routes is the whole API at a glance.
func (s *server) routes(r *gin.Engine) {
	r.GET("/", s.index)
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/ui/*filepath", gin.WrapH(UI()))
	r.HEAD("/ui/*filepath", gin.WrapH(UI()))
	r.GET("/openapi.json", func(c *gin.Context) { c.Data(200, jsonType, openAPI) })

	api := r.Group("", s.auth, s.validParams, s.limitBody)

	api.POST("/usuarios", s.createUser)
	api.GET("/usuarios", s.listUsers)
	api.GET("/usuarios/buscar", s.searchUsers)
	api.GET("/usuarios/:id", s.getUser)
	api.PUT("/usuarios/:id", s.replaceUser)
	api.PATCH("/usuarios/:id", s.patchUser)
	api.DELETE("/usuarios/:id", s.deleteUser)

	api.GET("/config", s.listConfig)
	api.GET("/config/:chave", s.getConfig)
	api.PUT("/config/:chave", s.putConfig)
	api.DELETE("/config/:chave", s.deleteConfig)
	api.GET("/config/:chave/historico", s.configHistory)
	api.POST("/transacao", s.transaction)

	api.POST("/servicos/registrar", s.registerInstance)
	api.GET("/servicos", s.listServices)
	api.GET("/servicos/:nome", s.listInstances)
	api.POST("/servicos/:nome/:id/heartbeat", s.heartbeat)
	api.DELETE("/servicos/:nome/:id", s.deregister)

	api.GET("/lock", s.listLocks)
	api.POST("/lock/:recurso", s.acquireLock)
	api.GET("/lock/:recurso", s.getLock)
	api.DELETE("/lock/:recurso", s.releaseLock)
	api.POST("/lock/:recurso/renovar", s.renew("lock", "recurso", lockProblems))

	api.GET("/eleicao", s.listElections)
	api.POST("/eleicao/:nome/candidatar", s.campaign)
	api.GET("/eleicao/:nome", s.getLeader)
	api.PUT("/eleicao/:nome", s.proclaim)
	api.POST("/eleicao/:nome/renovar", s.renew("eleicao", "nome", electionProblems))
	api.DELETE("/eleicao/:nome", s.release("eleicao", electionProblems, "Liderança renunciada"))

	api.GET("/semaforo", s.listSemaphores)
	api.POST("/semaforo/:nome", s.acquireSlot)
	api.GET("/semaforo/:nome", s.getSemaphore)
	api.POST("/semaforo/:nome/renovar", s.renew("semaforo", "nome", semaphoreProblems))
	api.DELETE("/semaforo/:nome", s.release("semaforo", semaphoreProblems, "Vaga liberada"))

	api.GET("/eventos", s.events)
	api.GET("/cluster", s.cluster)
	api.GET("/cluster/snapshot", s.snapshot)
	api.POST("/cluster/manutencao", s.maintenance)
	api.GET("/metrics", metricsHandler)

	// Only a demo member has these, and only its supervisor knows the secret.
	if s.cfg.DemoSecret != "" {
		r.POST("/demo/interno/cortar", s.fromSupervisor, s.peerLinks(true))
		r.POST("/demo/interno/religar", s.fromSupervisor, s.peerLinks(false))
	}
}
