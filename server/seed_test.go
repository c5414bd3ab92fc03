package server

import (
	"fmt"
	"testing"
)

// TestOriginalREADMEExamples replays the requests of the original Flask
// project's README, copied here, and checks the answers its clients rely on.
func TestOriginalREADMEExamples(t *testing.T) {
	// Criar um Usuário
	w := call(t, api, "POST", "/usuarios", `{
    "nome": "Maria Santos",
    "email": "maria@email.com",
    "idade": 28,
    "cidade": "São Paulo"
  }`)
	expect(t, w, 201)
	created := decode[obj](t, w)
	id := created["id"].(string)
	if created["mensagem"] != "Usuário criado com sucesso" || created["usuario"].(obj)["cidade"] != "São Paulo" {
		t.Fatalf("criar: %v", created)
	}
	// Listar Todos os Usuários
	if all := decode[[]obj](t, call(t, api, "GET", "/usuarios", "")); len(all) == 0 {
		t.Fatal("listar: empty")
	}
	// Buscar Usuário Específico
	if u := decode[obj](t, call(t, api, "GET", "/usuarios/"+id, "")); u["nome"] != "Maria Santos" || fmt.Sprint(u["idade"]) != "28" {
		t.Fatalf("buscar: %v", u)
	}
	// Buscar por Nome
	found := decode[[]obj](t, call(t, api, "GET", "/usuarios/buscar?nome=Maria", ""))
	if len(found) == 0 || found[0]["nome"] != "Maria Santos" {
		t.Fatalf("buscar por nome: %v", found)
	}
	// Atualizar Usuário
	w = call(t, api, "PUT", "/usuarios/"+id, `{
  "nome": "João Silva Santos",
  "email": "joao.santos@email.com",
  "idade": 31
}`)
	expect(t, w, 200)
	if got := decode[obj](t, w); got["mensagem"] != "Usuário atualizado" {
		t.Fatalf("atualizar: %v", got)
	}
	// Definir uma Configuração, then Obter Configuração
	w = call(t, api, "PUT", "/config/max_connections", `{"valor": "100"}`)
	expect(t, w, 200)
	if got := decode[obj](t, w); got["mensagem"] != "Configuração atualizada" || got["valor"] != "100" {
		t.Fatalf("definir configuração: %v", got)
	}
	if w = call(t, api, "GET", "/config/max_connections", ""); w.Body.String() != `{"max_connections":"100"}`+"\n" {
		t.Fatalf("obter configuração: %s", w.Body)
	}
	// Registrar um Serviço, then Listar Serviços
	w = call(t, api, "POST", "/servicos/registrar", `{
    "nome": "api-usuarios",
    "endpoint": "http://localhost:5001"
  }`)
	expect(t, w, 201)
	if got := decode[obj](t, w); got["mensagem"] != "Serviço registrado" {
		t.Fatalf("registrar serviço: %v", got)
	}
	if list := decode[[]obj](t, call(t, api, "GET", "/servicos/api-usuarios", "")); len(list) == 0 || list[0]["endpoint"] != "http://localhost:5001" || list[0]["status"] != "active" {
		t.Fatalf("listar serviços: %v", list)
	}
	// Adquirir um Lock, then Liberar Lock
	w = call(t, api, "POST", "/lock/recurso-seed", `{"holder": "worker-1"}`)
	expect(t, w, 200)
	if got := decode[obj](t, w); got["mensagem"] != "Lock adquirido" || got["holder"] != "worker-1" {
		t.Fatalf("adquirir lock: %v", got)
	}
	w = call(t, api, "DELETE", "/lock/recurso-seed", "")
	expect(t, w, 200)
	if got := decode[obj](t, w); got["mensagem"] != "Lock liberado" {
		t.Fatalf("liberar lock: %v", got)
	}
	// Deletar Usuário
	w = call(t, api, "DELETE", "/usuarios/"+id, "")
	expect(t, w, 200)
	if got := decode[obj](t, w); got["mensagem"] != "Usuário deletado" {
		t.Fatalf("deletar: %v", got)
	}
}
