package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Extensions: where the model comes from and whether it is in memory.
	Source string `json:"source"`
	Size   int64  `json:"size"`
	Loaded bool   `json:"loaded"`
}

func (s *Server) modelObject(f modelFile, loaded []string) modelObject {
	return modelObject{ID: f.ID, Object: "model", Created: f.Created, OwnedBy: "foretoken",
		Source: f.Source, Size: f.Size, Loaded: slices.Contains(loaded, f.ID)}
}

func (s *Server) handleModels(c *gin.Context) {
	loaded := s.models.loadedIDs()
	data := []modelObject{}
	for _, f := range s.models.list() {
		data = append(data, s.modelObject(f, loaded))
	}
	c.JSON(http.StatusOK, gin.H{"object": "list", "data": data})
}

func (s *Server) handleModel(c *gin.Context) {
	// The id may hold slashes (Ollama namespaces), hence the wildcard.
	id := strings.TrimPrefix(c.Param("id"), "/")
	f, ok := s.models.lookup(id)
	if !ok {
		abortErr(c, errModelNotFound(id))
		return
	}
	c.JSON(http.StatusOK, s.modelObject(f, s.models.loadedIDs()))
}
