package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/foretoken/foretoken/config"
)

// modelFile is a model the server can load.
type modelFile struct {
	ID      string
	Path    string
	Source  string // "dir", "file" or "ollama"
	Size    int64
	Created int64 // modification time, Unix seconds
}

// LoadFunc opens the model at path. It is called at most once per load.
type LoadFunc func(ctx context.Context, path string) (Engine, error)

// registry knows the available models, loads them on first use and
// unloads them when idle or when the loaded-model limit needs room.
type registry struct {
	files     map[string]modelFile
	ids       []string // sorted
	load      LoadFunc
	keepAlive time.Duration
	maxLoaded int
	newSched  func(e Engine) *scheduler
	dropSched func(*scheduler)
	log       *slog.Logger

	mu     sync.Mutex
	loaded map[string]*loadedModel
	closed bool
}

// loadedModel is a model in memory (or being loaded) and its slots.
type loadedModel struct {
	id    string
	ready chan struct{} // closed when loading ended; then eng or err is set
	eng   Engine
	err   error
	sched *scheduler

	refs     int // requests using it
	lastUsed time.Time
	timer    *time.Timer // keep-alive expiry while refs == 0
	// keepAlive, when set, is the last keep_alive a request asked for
	// (Ollama's per-request keep_alive); it replaces the server's.
	keepAlive *time.Duration
}

func newRegistry(files []modelFile, load LoadFunc, keepAlive time.Duration, maxLoaded int, newSched func(Engine) *scheduler, log *slog.Logger) *registry {
	r := &registry{files: map[string]modelFile{}, load: load, keepAlive: keepAlive, maxLoaded: maxLoaded,
		newSched: newSched, log: log, loaded: map[string]*loadedModel{}}
	for _, f := range files {
		if prev, dup := r.files[f.ID]; dup {
			log.Warn("duplicate model id; keeping the first", "id", f.ID, "kept", prev.Path, "ignored", f.Path)
			continue
		}
		r.files[f.ID] = f
		r.ids = append(r.ids, f.ID)
	}
	sort.Strings(r.ids)
	return r
}

func (r *registry) list() []modelFile {
	out := make([]modelFile, len(r.ids))
	for i, id := range r.ids {
		out[i] = r.files[id]
	}
	return out
}

// lookup finds a model by id. As in Ollama, a name without a tag means
// its "latest" tag: "llama3.2" is "llama3.2:latest".
func (r *registry) lookup(id string) (modelFile, bool) {
	f, ok := r.files[id]
	if !ok && id != "" && !strings.Contains(id, ":") {
		f, ok = r.files[id+":latest"]
	}
	return f, ok
}

var errAllBusy = &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "models_busy",
	Message: "The loaded-model limit is reached and every loaded model is in use; retry later", RetryAfter: 2}

// acquire returns the loaded model id, loading it if needed; the caller
// must release it. Concurrent callers share one load.
func (r *registry) acquire(ctx context.Context, id string) (*loadedModel, error) {
	f, ok := r.lookup(id)
	if !ok {
		return nil, errModelNotFound(id)
	}
	id = f.ID
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errShuttingDown
	}
	lm, ok := r.loaded[id]
	if !ok {
		if err := r.makeRoomLocked(); err != nil {
			r.mu.Unlock()
			return nil, err
		}
		lm = &loadedModel{id: id, ready: make(chan struct{})}
		r.loaded[id] = lm
		go r.doLoad(lm, f)
	}
	lm.refs++
	if lm.timer != nil {
		lm.timer.Stop()
		lm.timer = nil
	}
	r.mu.Unlock()

	select {
	case <-lm.ready:
	case <-ctx.Done():
		r.release(lm)
		return nil, ctx.Err()
	}
	if lm.err != nil {
		r.release(lm)
		return nil, lm.err
	}
	return lm, nil
}

// doLoad runs apart from the requests so that one giving up does not
// abandon a half-loaded model.
func (r *registry) doLoad(lm *loadedModel, f modelFile) {
	start := time.Now()
	eng, err := r.load(context.Background(), f.Path)
	r.mu.Lock()
	if err != nil {
		lm.err = &apiError{Status: http.StatusInternalServerError, Type: "server_error", Code: "model_load_failed",
			Message: fmt.Sprintf("loading model %q failed: %v", f.ID, err)}
		delete(r.loaded, lm.id)
		r.log.Error("model load failed", "model", f.ID, "path", f.Path, "err", err)
	} else {
		lm.eng = eng
		lm.sched = r.newSched(eng)
		r.log.Info("model loaded", "model", f.ID, "path", f.Path, "took", time.Since(start).Round(time.Millisecond))
	}
	closed := r.closed
	r.mu.Unlock()
	close(lm.ready)
	if closed && err == nil {
		// The server stopped while we were loading; nobody will unload it.
		r.mu.Lock()
		if lm.refs == 0 {
			r.unloadLocked(lm)
		}
		r.mu.Unlock()
	}
}

// makeRoomLocked unloads the least recently used idle model when loading
// one more would pass the limit.
func (r *registry) makeRoomLocked() error {
	if r.maxLoaded <= 0 || len(r.loaded) < r.maxLoaded {
		return nil
	}
	var victim *loadedModel
	for _, lm := range r.loaded {
		if lm.refs > 0 || lm.eng == nil {
			continue
		}
		if victim == nil || lm.lastUsed.Before(victim.lastUsed) {
			victim = lm
		}
	}
	if victim == nil {
		return errAllBusy
	}
	r.log.Info("unloading model to make room", "model", victim.id, "max_loaded", r.maxLoaded)
	r.unloadLocked(victim)
	return nil
}

func (r *registry) release(lm *loadedModel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lm.refs--
	lm.lastUsed = time.Now()
	if lm.refs > 0 || lm.eng == nil || r.loaded[lm.id] != lm {
		return
	}
	switch ka := r.keepAliveLocked(lm); {
	case r.closed || ka == 0:
		r.unloadLocked(lm)
	case ka > 0:
		lm.timer = time.AfterFunc(ka, func() { r.expire(lm) })
	}
}

// keepAliveLocked is how long lm stays loaded after its last use; negative
// is for ever.
func (r *registry) keepAliveLocked(lm *loadedModel) time.Duration {
	if lm.keepAlive != nil {
		return *lm.keepAlive
	}
	return r.keepAlive
}

// setKeepAlive applies a request's keep_alive to lm: it counts from the
// end of that request and stays in force for later ones.
func (r *registry) setKeepAlive(lm *loadedModel, d time.Duration) {
	r.mu.Lock()
	lm.keepAlive = &d
	r.mu.Unlock()
}

func (r *registry) expire(lm *loadedModel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ka := r.keepAliveLocked(lm); lm.refs == 0 && r.loaded[lm.id] == lm && ka >= 0 && time.Since(lm.lastUsed) >= ka {
		r.log.Info("unloading idle model", "model", lm.id, "keep_alive", ka)
		r.unloadLocked(lm)
	}
}

// loadedStatus is what /api/ps shows of a loaded model.
type loadedStatus struct {
	id        string
	expiresAt time.Time // zero: never
	ctxLen    int
}

// status lists the models in memory with when they will be unloaded (for
// a busy model: keep-alive from now, a lower bound).
func (r *registry) status() []loadedStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []loadedStatus
	for id, lm := range r.loaded {
		if lm.eng == nil {
			continue
		}
		st := loadedStatus{id: id, ctxLen: lm.sched.ctxLen}
		if ka := r.keepAliveLocked(lm); ka >= 0 {
			from := time.Now()
			if lm.refs == 0 {
				from = lm.lastUsed
			}
			st.expiresAt = from.Add(ka)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (r *registry) unloadLocked(lm *loadedModel) {
	if lm.timer != nil {
		lm.timer.Stop()
		lm.timer = nil
	}
	if r.loaded[lm.id] == lm {
		delete(r.loaded, lm.id)
	}
	if lm.sched != nil && r.dropSched != nil {
		r.dropSched(lm.sched)
	}
	if lm.eng != nil {
		if err := lm.eng.Close(); err != nil {
			r.log.Warn("closing model", "model", lm.id, "err", err)
		}
		lm.eng = nil
	}
}

// loadedIDs lists the models in memory.
func (r *registry) loadedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id, lm := range r.loaded {
		if lm.eng != nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// close refuses new work and unloads every idle model; busy ones are
// unloaded as their last request releases them.
func (r *registry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, lm := range r.loaded {
		if lm.refs == 0 && lm.eng != nil {
			r.unloadLocked(lm)
		}
	}
}

// discoverModels lists the models in dirs (every *.gguf below them, id =
// file name without .gguf), the single files of specs, and the models of
// Ollama's store at ollamaDir ("" = $OLLAMA_MODELS or ~/.ollama/models, "-"
// = none). Unreadable folders are errors; a missing Ollama store is not.
func discoverModels(dirs []string, files []config.ModelSpec, ollamaDir string) ([]modelFile, error) {
	var out []modelFile
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.EqualFold(filepath.Ext(path), ".gguf") {
				return nil
			}
			f, err := statModel(path, strings.TrimSuffix(d.Name(), filepath.Ext(d.Name())), "dir")
			if err != nil {
				return err
			}
			out = append(out, f)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scan models folder %s: %w", dir, err)
		}
	}
	for _, mp := range files {
		id := mp.Alias
		if id == "" {
			id = strings.TrimSuffix(filepath.Base(mp.Path), filepath.Ext(mp.Path))
		}
		f, err := statModel(mp.Path, id, "file")
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	if ollamaDir != "-" {
		om, err := discoverOllama(ollamaDir)
		if err != nil {
			return nil, err
		}
		out = append(out, om...)
	}
	return out, nil
}

func statModel(path, id, source string) (modelFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return modelFile{}, fmt.Errorf("model %s: %w", path, err)
	}
	if st.IsDir() {
		return modelFile{}, fmt.Errorf("model %s is a folder; use --models for folders", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return modelFile{}, fmt.Errorf("model %s: %w", path, err)
	}
	return modelFile{ID: id, Path: abs, Source: source, Size: st.Size(), Created: st.ModTime().Unix()}, nil
}

const ollamaModelMediaType = "application/vnd.ollama.image.model"

// discoverOllama reads Ollama's manifests: for each
// manifests/registry.ollama.ai/NAMESPACE/NAME/TAG, the layer holding the
// GGUF weights is blobs/sha256-HEX. Library models are named NAME:TAG,
// others NAMESPACE/NAME:TAG, as Ollama shows them.
func discoverOllama(dir string) ([]modelFile, error) {
	explicit := dir != ""
	if dir == "" {
		dir = os.Getenv("OLLAMA_MODELS")
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		dir = filepath.Join(home, ".ollama", "models")
	}
	root := filepath.Join(dir, "manifests", "registry.ollama.ai")
	if _, err := os.Stat(root); err != nil {
		if explicit {
			return nil, fmt.Errorf("ollama store %s: %w", dir, err)
		}
		return nil, nil
	}
	var out []modelFile
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 3 {
			return nil
		}
		ns, name, tag := parts[0], parts[1], parts[2]
		blob, err := ollamaModelBlob(path)
		if err != nil {
			return nil // not a model manifest we understand; skip it
		}
		id := name + ":" + tag
		if ns != "library" {
			id = ns + "/" + id
		}
		f, err := statModel(filepath.Join(dir, "blobs", blob), id, "ollama")
		if err != nil {
			return nil // manifest without its blob (partial pull)
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan ollama store %s: %w", dir, err)
	}
	return out, nil
}

// ollamaModelBlob returns the blob file name of a manifest's model layer.
// The digest is checked to be "sha256:" and hex so it cannot name a path.
func ollamaModelBlob(manifest string) (string, error) {
	b, err := os.ReadFile(manifest)
	if err != nil {
		return "", err
	}
	var m struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", err
	}
	for _, l := range m.Layers {
		if l.MediaType != ollamaModelMediaType {
			continue
		}
		hex, ok := strings.CutPrefix(l.Digest, "sha256:")
		if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
			return "", fmt.Errorf("bad digest %q", l.Digest)
		}
		return "sha256-" + hex, nil
	}
	return "", errors.New("no model layer")
}
