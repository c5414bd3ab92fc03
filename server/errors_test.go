package server

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"strconv"
	"testing"
)

// TestEveryStoreErrorIsInTheTable: each error kind store/errors.go declares
// has its row in storeErrors, so no handler answers one by hand.
func TestEveryStoreErrorIsInTheTable(t *testing.T) {
	f, err := parser.ParseFile(gotoken.NewFileSet(), "../store/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[string]bool{}
	for _, e := range storeErrors {
		inTable[e.err.Error()] = true
	}
	kinds := 0
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if i >= len(spec.Values) {
				break // a variable without a value: no error kind
			}
			call, ok := spec.Values[i].(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				continue
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok {
				continue
			}
			msg, _ := strconv.Unquote(lit.Value)
			kinds++
			if !inTable[msg] {
				t.Errorf("store.%s (%q) has no row in server/errors.go's table", name.Name, msg)
			}
		}
		return true
	})
	if kinds < 20 {
		t.Fatalf("found %d error kinds in store/errors.go", kinds)
	}
}
