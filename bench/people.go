package main

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
	"unicode"
)

// Users shaped like a Brazilian user base: common first names and surnames,
// accents included, each full name (first name and two surnames) distinct,
// each email distinct, ages and cities spread as in a real table.
var (
	firstNames = strings.Fields(`Maria José Ana João Antônio Francisco Francisca Carlos Paulo Pedro
		Lucas Luiz Luís Marcos Gabriel Rafael Daniel Marcelo Bruno Eduardo Felipe Raimundo Rodrigo
		Antônia Adriana Juliana Márcia Fernanda Patrícia Aline Sandra Camila Amanda Bruna Jéssica
		Letícia Júlia Luciana Vanessa Mariana Gabriela Valéria Cláudia Sônia Conceição Inês Lúcia
		Flávia Vitória Beatriz Luíza Heloísa Cecília Otávio Sérgio Fábio Márcio Vinícius Caio
		Estêvão Célia Mônica Tânia Rosângela Joaquim Sebastião Benedito Irene Glória Simone Renata`)
	surnames = strings.Fields(`Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima
		Gomes Costa Ribeiro Martins Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa Rocha
		Dias Nascimento Andrade Moreira Nunes Marques Machado Mendes Freitas Cardoso Ramos
		Gonçalves Santana Teixeira Araújo Magalhães Simões Guimarães Brandão Falcão Assunção
		Damião Antunes Queiroz Peixoto Azevedo Monteiro Correia Câmara Conceição Macedo Sá`)
	cities = strings.Fields(`São_Paulo Rio_de_Janeiro Belo_Horizonte Brasília Salvador Fortaleza
		Curitiba Recife Porto_Alegre Belém Goiânia Manaus São_Luís Maceió Teresina João_Pessoa
		Natal Florianópolis Vitória Cuiabá Campo_Grande Aracaju Macapá Londrina Niterói Uberlândia`)
	providers = []string{"gmail.com", "hotmail.com", "outlook.com", "yahoo.com.br", "uol.com.br", "bol.com.br", "terra.com.br"}
)

type person struct {
	name, email, city string
	age               int
}

// people returns n distinct people, the same ones on every run.
func people(n int) []person {
	combos := len(firstNames) * len(surnames) * len(surnames)
	if n > combos {
		check(fmt.Errorf("at most %d distinct names", combos))
	}
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]person, 0, n)
	for _, i := range r.Perm(combos)[:n] {
		first, middle, last := firstNames[i%len(firstNames)], surnames[i/len(firstNames)%len(surnames)], surnames[i/len(firstNames)/len(surnames)]
		out = append(out, person{
			name:  first + " " + middle + " " + last,
			email: fmt.Sprintf("%s.%s.%s@%s", plain(first), plain(middle), plain(last), providers[r.IntN(len(providers))]),
			city:  strings.ReplaceAll(cities[r.IntN(len(cities))], "_", " "),
			age:   18 + r.IntN(70),
		})
	}
	return out
}

// plain is a name as it goes in an email address: lower case, no accents.
func plain(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, _ := transform.String(t, strings.ToLower(s))
	return out
}

func (p person) json() string {
	return fmt.Sprintf(`{"nome":%q,"email":%q,"idade":%d,"cidade":%q}`, p.name, p.email, p.age, p.city)
}
