package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"etcdapi/store"
)

// maxTxnOps is etcd's --max-txn-ops default: a transaction's operations in all.
const maxTxnOps = 128

// transaction applies several configuration writes at once, all or none, if
// its conditions hold (SPEC §4, "Atomic and guarded writes").
func (s *server) transaction(c *gin.Context) {
	body, err := readObject(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	conds, ops, g, err := parseTxn(body)
	if err == nil && g.Kind == "" {
		g, err = guardOf(c)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.store.Transaction(c.Request.Context(), conds, ops, g)
	var failed *store.TxnFailedError
	if errors.As(err, &failed) {
		c.JSON(http.StatusConflict, gin.H{"erro": "Condição não atendida", "revisao": failed.Revision, "falhas": failed.Failures})
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// parseTxn reads {"se": [...], "entao": [...], "guarda": {...}}, naming each
// bad condition or operation by its place (entao[2].chave).
func parseTxn(body map[string]json.RawMessage) ([]store.Cond, []store.TxnOp, store.Guard, error) {
	campos := map[string]string{}
	var se, entao []map[string]json.RawMessage
	if raw, ok := body["se"]; ok && json.Unmarshal(raw, &se) != nil {
		campos["se"] = "deve ser uma lista de condições {\"chave\", e \"revisao\", \"existe\" ou \"valor\"}"
	}
	if json.Unmarshal(body["entao"], &entao) != nil || len(entao) == 0 || len(entao)+len(se) > maxTxnOps {
		campos["entao"] = fmt.Sprintf("deve ser uma lista de 1 a %d operações (condições incluídas): {\"definir\",\"valor\"}, {\"apagar\"} ou {\"ler\"}", maxTxnOps)
	}
	conds := make([]store.Cond, len(se))
	for i, c := range se {
		place := fmt.Sprintf("se[%d]", i)
		conds[i].Key = keyAt(c["chave"], place+".chave", campos)
		switch {
		case count(c, "revisao", "existe", "valor") != 1:
			campos[place] = "use exatamente um de revisao, existe ou valor"
		case c["revisao"] != nil:
			if json.Unmarshal(c["revisao"], &conds[i].Revision) != nil || conds[i].Revision == nil || *conds[i].Revision < 0 {
				campos[place+".revisao"] = "deve ser uma revisão (inteiro, 0: ausente)"
			}
		case c["existe"] != nil:
			if json.Unmarshal(c["existe"], &conds[i].Exists) != nil || conds[i].Exists == nil {
				campos[place+".existe"] = "deve ser true ou false"
			}
		default:
			var v bytes.Buffer
			json.Compact(&v, c["valor"]) // valid: the body was
			conds[i].Value = v.Bytes()
		}
	}
	ops := make([]store.TxnOp, len(entao))
	written := map[string]bool{}
	for i, o := range entao {
		place := fmt.Sprintf("entao[%d]", i)
		kinds := count(o, "definir", "apagar", "ler")
		switch {
		case kinds != 1:
			campos[place] = "use exatamente um de definir (com valor), apagar ou ler"
			continue
		case o["definir"] != nil:
			ops[i].Kind = "definir"
			if o["valor"] == nil {
				campos[place+".valor"] = "obrigatório ao definir (qualquer valor JSON, inclusive null)"
			}
			var v bytes.Buffer
			json.Compact(&v, o["valor"])
			ops[i].Value = v.Bytes()
		case o["apagar"] != nil:
			ops[i].Kind = "apagar"
		default:
			ops[i].Kind = "ler"
		}
		ops[i].Key = keyAt(o[ops[i].Kind], place+".chave", campos)
		if ops[i].Kind != "ler" && ops[i].Key != "" {
			if written[ops[i].Key] {
				campos[place+".chave"] = "chave já escrita nesta transação"
			}
			written[ops[i].Key] = true
		}
	}
	var g store.Guard
	if raw, ok := body["guarda"]; ok {
		g = guardInBody(raw, campos)
	}
	if len(campos) > 0 {
		return nil, nil, g, &apiError{status: http.StatusBadRequest, msg: "Transação inválida", campos: campos}
	}
	return conds, ops, g, nil
}

// keyAt reads a configuration key's name, or notes the problem at place.
func keyAt(raw json.RawMessage, place string, campos map[string]string) string {
	var k string
	if json.Unmarshal(raw, &k) != nil || !validIdentifier(k) {
		campos[place] = "deve ser o nome de uma chave: de 1 a 128 caracteres entre A-Z a-z 0-9 . _ -"
		return ""
	}
	return k
}

// count is how many of names o has.
func count(o map[string]json.RawMessage, names ...string) int {
	n := 0
	for _, name := range names {
		if _, ok := o[name]; ok {
			n++
		}
	}
	return n
}

// guardInBody reads a transaction's "guarda": {"lock": "relatorio", "token": 37}.
func guardInBody(raw json.RawMessage, campos map[string]string) store.Guard {
	var o map[string]json.RawMessage
	var g store.Guard
	json.Unmarshal(raw, &o)
	for _, kind := range []string{"lock", "eleicao", "semaforo"} {
		if o[kind] != nil {
			g.Kind = kind
			json.Unmarshal(o[kind], &g.Resource)
		}
	}
	json.Unmarshal(o["token"], &g.Token)
	if count(o, "lock", "eleicao", "semaforo") != 1 || g.Token < 1 || !validIdentifier(g.Resource) {
		campos["guarda"] = `use {"lock": "<recurso>", "token": <n>} (ou eleicao, semaforo)`
	}
	return g
}
