package server

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed ui
var uiFiles embed.FS

// openAPI describes every route; a test keeps it true.
//
//go:embed openapi.json
var openAPI []byte

// ui is the dashboard, served from files embedded in the binary.
func ui() http.FileSystem {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err)
	}
	return http.FS(sub)
}

// UI is the dashboard's files, for the demo supervisor that serves them too.
func UI() http.FileSystem { return ui() }
