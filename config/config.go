// Package config reads foretoken's server settings from, in rising
// precedence, built-in defaults, a YAML file, FORETOKEN_* environment
// variables and command-line flags, and hands them on as a plain Config.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is everything `foretoken serve` needs. It carries no viper state so
// that the server can be built from a literal in tests.
type Config struct {
	Host        string        // address to bind; loopback by default
	Port        int           // TCP port; 0 picks a free one
	ModelDirs   []string      // folders searched for *.gguf
	Models      []ModelSpec   // single files, each with an optional alias
	OllamaDir   string        // Ollama's model store; "" means the default place, "-" disables it
	CtxSize     int           // context length of each sequence; 0 means the model's own (capped)
	Parallel    int           // requests generating at once per model
	Batch       bool          // run the decode steps of concurrent requests as one batched pass
	Queue       int           // requests that may wait for a slot before 429
	Threads     int           // compute threads per model; 0 means all cores
	CacheType   string        // KV cache element type: f16 (""), f32 or q8_0
	APIKey      string        // when set, every route but /health needs Bearer auth
	KeepAlive   time.Duration // idle time before a model is unloaded; <0 keeps it forever
	MaxLoaded   int           // models loaded at once; 0 means no limit
	CORSOrigins []string      // allowed origins; empty turns CORS off, "*" allows all
	MaxBody     int64         // largest request body in bytes
	Grace       time.Duration // how long shutdown waits for in-flight requests
	// WriteTimeout drops a client that accepts no data for this long, so
	// that a reader who stalls cannot hold a slot for ever.
	WriteTimeout time.Duration
}

// ModelSpec is one --model PATH[=ALIAS] argument.
type ModelSpec struct {
	Path  string
	Alias string // "" means the file name without .gguf
}

// ParseModelSpec splits PATH[=ALIAS]. A path may itself contain '=', so only
// the last one counts and only when what follows it looks like a name.
func ParseModelSpec(s string) (ModelSpec, error) {
	if s == "" {
		return ModelSpec{}, errors.New("empty model path")
	}
	if i := strings.LastIndexByte(s, '='); i > 0 && i < len(s)-1 && !strings.ContainsAny(s[i+1:], `/\`) {
		return ModelSpec{Path: s[:i], Alias: s[i+1:]}, nil
	}
	return ModelSpec{Path: s}, nil
}

// Keys of the settings, shared by flags, YAML and (upper-cased, '-' as '_',
// prefixed FORETOKEN_) the environment.
const (
	KeyConfig    = "config"
	KeyHost      = "host"
	KeyPort      = "port"
	KeyModelDirs = "models"
	KeyModels    = "model"
	KeyOllama    = "ollama-models"
	KeyCtxSize   = "ctx-size"
	KeyParallel  = "parallel"
	KeyBatch     = "batch"
	KeyQueue     = "queue"
	KeyThreads   = "threads"
	KeyCacheType = "cache-type"
	KeyAPIKey    = "api-key"
	KeyKeepAlive = "keep-alive"
	KeyMaxLoaded = "max-loaded"
	KeyCORS      = "cors-origin"
	KeyMaxBody   = "max-body"
	KeyGrace     = "shutdown-grace"
	KeyWriteTO   = "write-timeout"
)

// Default returns the settings used when nothing else says otherwise.
func Default() Config {
	return Config{
		Host:      "127.0.0.1",
		Port:      8080,
		Parallel:  2,
		Batch:     true,
		Queue:     16,
		KeepAlive: 5 * time.Minute,
		MaxBody:   8 << 20,
		Grace:     10 * time.Second,

		WriteTimeout: 30 * time.Second,
	}
}

// AddFlags registers every setting on fs with its default, so that --help
// lists them.
func AddFlags(fs *pflag.FlagSet) {
	d := Default()
	fs.String(KeyConfig, "", "YAML config file (keys as the long flag names)")
	fs.String(KeyHost, d.Host, "address to listen on")
	fs.Int(KeyPort, d.Port, "port to listen on")
	fs.StringArray(KeyModelDirs, nil, "folder of *.gguf models, searched recursively (repeatable)")
	fs.StringArrayP(KeyModels, "m", nil, "one GGUF model file, PATH[=ALIAS] (repeatable)")
	fs.String(KeyOllama, "", `Ollama model store (default $OLLAMA_MODELS or ~/.ollama/models; "-" disables)`)
	fs.Int(KeyCtxSize, 0, "context length per request (0: the model's, capped at 4096)")
	fs.Int(KeyParallel, d.Parallel, "requests generating at once per model")
	fs.Bool(KeyBatch, d.Batch, "decode concurrent requests together in one batched forward pass (continuous batching)")
	fs.Int(KeyQueue, d.Queue, "requests waiting for a slot before answering 429")
	fs.Int(KeyThreads, 0, "compute threads per model (0: all cores)")
	fs.String(KeyCacheType, "", "KV cache element type: f16 (when empty), f32 or q8_0 (q8_0 needs a head dimension that is a multiple of 32)")
	fs.String(KeyAPIKey, "", "require 'Authorization: Bearer KEY' on every route but /health")
	fs.Duration(KeyKeepAlive, d.KeepAlive, "unload a model after this long unused (negative: never)")
	fs.Int(KeyMaxLoaded, 0, "most models loaded at once; the least recently used idle one is unloaded (0: no limit)")
	fs.StringArray(KeyCORS, nil, `allowed CORS origin (repeatable; "*" for any; none: CORS off)`)
	fs.Int64(KeyMaxBody, d.MaxBody, "largest request body in bytes (larger: 413)")
	fs.Duration(KeyGrace, d.Grace, "on SIGINT/SIGTERM, how long in-flight requests may finish")
	fs.Duration(KeyWriteTO, d.WriteTimeout, "drop a client that accepts no response data for this long (frees its slot)")
}

// Load resolves the settings from fs (after parsing), the environment and
// the config file named by --config or FORETOKEN_CONFIG.
func Load(fs *pflag.FlagSet) (Config, error) {
	v := viper.New()
	d := Default()
	v.SetDefault(KeyHost, d.Host)
	v.SetDefault(KeyPort, d.Port)
	v.SetDefault(KeyParallel, d.Parallel)
	v.SetDefault(KeyQueue, d.Queue)
	v.SetDefault(KeyBatch, d.Batch)
	v.SetDefault(KeyKeepAlive, d.KeepAlive)
	v.SetDefault(KeyMaxBody, d.MaxBody)
	v.SetDefault(KeyGrace, d.Grace)
	v.SetDefault(KeyWriteTO, d.WriteTimeout)

	v.SetEnvPrefix("FORETOKEN")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(fs); err != nil {
		return Config{}, fmt.Errorf("bind flags: %w", err)
	}

	if file := v.GetString(KeyConfig); file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("read config file %s: %w", file, err)
		}
	}

	c := Config{
		Host:        v.GetString(KeyHost),
		Port:        v.GetInt(KeyPort),
		ModelDirs:   list(v, KeyModelDirs),
		OllamaDir:   v.GetString(KeyOllama),
		CtxSize:     v.GetInt(KeyCtxSize),
		Parallel:    v.GetInt(KeyParallel),
		Queue:       v.GetInt(KeyQueue),
		Batch:       v.GetBool(KeyBatch),
		Threads:     v.GetInt(KeyThreads),
		CacheType:   v.GetString(KeyCacheType),
		APIKey:      v.GetString(KeyAPIKey),
		KeepAlive:   v.GetDuration(KeyKeepAlive),
		MaxLoaded:   v.GetInt(KeyMaxLoaded),
		CORSOrigins: list(v, KeyCORS),
		MaxBody:     v.GetInt64(KeyMaxBody),
		Grace:       v.GetDuration(KeyGrace),

		WriteTimeout: v.GetDuration(KeyWriteTO),
	}
	for _, s := range list(v, KeyModels) {
		m, err := ParseModelSpec(s)
		if err != nil {
			return Config{}, fmt.Errorf("--%s %q: %w", KeyModels, s, err)
		}
		c.Models = append(c.Models, m)
	}
	for i, d := range c.ModelDirs {
		c.ModelDirs[i] = expandHome(d)
	}
	c.OllamaDir = expandHome(c.OllamaDir)
	return c, c.Validate()
}

// list reads a repeatable setting. From YAML it is a sequence; from the
// environment a single string, which we split on commas (viper would split
// on spaces, which paths may contain).
func list(v *viper.Viper, key string) []string {
	items, ok := v.Get(key).(string)
	var raw []string
	if ok {
		raw = strings.Split(items, ",")
	} else {
		raw = v.GetStringSlice(key)
	}
	var out []string
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// Validate rejects settings the server cannot run with.
func (c Config) Validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("port %d out of range 0-65535", c.Port)
	case c.Parallel < 1 || c.Parallel > 256:
		return fmt.Errorf("parallel must be in [1, 256], got %d", c.Parallel)
	case c.Queue < 0:
		return fmt.Errorf("queue must not be negative, got %d", c.Queue)
	case c.CtxSize < 0:
		return fmt.Errorf("ctx-size must not be negative, got %d", c.CtxSize)
	case c.Threads < 0:
		return fmt.Errorf("threads must not be negative, got %d", c.Threads)
	case c.MaxLoaded < 0:
		return fmt.Errorf("max-loaded must not be negative, got %d", c.MaxLoaded)
	case c.MaxBody < 1:
		return fmt.Errorf("max-body must be positive, got %d", c.MaxBody)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("write-timeout must be positive, got %v", c.WriteTimeout)
	}
	return nil
}

// Addr is the host:port to listen on.
func (c Config) Addr() string {
	return net.JoinHostPort(strings.Trim(c.Host, "[]"), strconv.Itoa(c.Port))
}
