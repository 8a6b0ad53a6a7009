package gemfa

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
)

type tinyConfig struct {
	TextConfig struct {
		VocabSize     int       `json:"vocab_size"`
		NumLayers     int       `json:"num_hidden_layers"`
		HiddenSize    int       `json:"hidden_size"`
		NumHeads      int       `json:"num_attention_heads"`
		NumKVHeads    int       `json:"num_key_value_heads"`
		HeadDim       int       `json:"head_dim"`
		SlidingWindow int       `json:"sliding_window"`
		MaxPositions  int       `json:"max_position_embeddings"`
		NumKVShared   int       `json:"num_kv_shared_layers"`
		Sparsity      []float64 `json:"activation_sparsity_pattern"`
		LayerTypes    []string  `json:"layer_types"`
	} `json:"text_config"`
}

func TestModelInfoMatchesConfig(t *testing.T) {
	m := tinyModel(t)
	var cfg tinyConfig
	readJSON(t, filepath.Join(tinyDir(t), "config.json"), &cfg)
	tc := cfg.TextConfig
	in, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want int) {
		if got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	check("VocabSize", in.VocabSize, tc.VocabSize)
	check("NLayers", in.NLayers, tc.NumLayers)
	check("HiddenSize", in.HiddenSize, tc.HiddenSize)
	check("NHeads", in.NHeads, tc.NumHeads)
	check("NKVHeads", in.NKVHeads, tc.NumKVHeads)
	check("HeadDim", in.HeadDim, tc.HeadDim)
	check("SlidingWindow", in.SlidingWindow, tc.SlidingWindow)
	check("ContextLength", in.ContextLength, tc.MaxPositions)
	check("NKVSharedLayers", in.NKVSharedLayers, tc.NumKVShared)
	if !in.HasWeights || !in.HasTokenizer || in.WeightType != WeightsF32 || in.NParams <= 0 {
		t.Errorf("info: %+v", in)
	}
	for i := 0; i < in.NLayers; i++ {
		l, err := m.Layer(i)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(float64(l.Sparsity)-tc.Sparsity[i]) > 1e-6 {
			t.Errorf("layer %d sparsity %g, want %g", i, l.Sparsity, tc.Sparsity[i])
		}
		want := LayerSliding
		if tc.LayerTypes[i] == "full_attention" {
			want = LayerFull
		}
		if l.Type != want || l.KVSource < 0 || l.KVSource > i {
			t.Errorf("layer %d: %+v", i, l)
		}
	}
	if _, err := m.Layer(in.NLayers); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Layer(n) error = %v", err)
	}
	if _, err := m.Layer(-1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Layer(-1) error = %v", err)
	}
	if _, err := m.Prop(Prop(9999)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Prop(9999) error = %v", err)
	}
}

func TestEndOfGeneration(t *testing.T) {
	m := tinyModel(t)
	var gen struct {
		EOS []int32 `json:"eos_token_id"`
		BOS int32   `json:"bos_token_id"`
	}
	readJSON(t, filepath.Join(tinyDir(t), "generation_config.json"), &gen)
	ids, err := m.EOGIDs()
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	sort.Slice(gen.EOS, func(i, j int) bool { return gen.EOS[i] < gen.EOS[j] })
	if !equalIDs(ids, gen.EOS) {
		t.Errorf("EOGIDs = %v, want %v", ids, gen.EOS)
	}
	for _, id := range ids {
		if !m.IsEOG(id) {
			t.Errorf("IsEOG(%d) = false", id)
		}
	}
	if m.IsEOG(gen.BOS) {
		t.Error("IsEOG(<bos>) = true")
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load("/nonexistent/model/dir", nil); !errors.Is(err, ErrIO) {
		t.Errorf("missing dir: %v", err)
	} else if err.(*Error).Message == "" {
		t.Error("the library message is empty")
	}
	if _, err := Load("a\x00b", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NUL in path: %v", err)
	}
	if _, err := Load(tinyDir(t), &LoadOptions{Weights: WeightType(42)}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad weight type: %v", err)
	}
	if _, err := Load(tinyDir(t), &LoadOptions{Threads: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative threads: %v", err)
	}
	if w, err := ParseWeightType("q4"); err != nil || w != WeightsQ4 || w.String() != "q4" {
		t.Errorf("ParseWeightType(q4) = %v, %v", w, err)
	}
	if _, err := ParseWeightType("f64"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ParseWeightType: %v", err)
	}
	// a malformed config.json in an otherwise complete directory
	dir := t.TempDir()
	entries, err := os.ReadDir(tinyDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "config.json" {
			continue
		}
		if err := os.Symlink(filepath.Join(tinyDir(t), e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{ not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, nil); !errors.Is(err, ErrFormat) {
		t.Errorf("malformed config: %v", err)
	}
}

// A path that is not there satisfies errors.Is(err, fs.ErrNotExist) (and
// ErrNotFound, and ErrIO as in 0.1.0); a file that exists but cannot be
// read does not.
func TestLoadNotFound(t *testing.T) {
	notFound := func(path, missing string) {
		t.Helper()
		_, err := Load(path, nil)
		if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrIO) {
			t.Errorf("Load(%q) = %v, want a not-found error", path, err)
			return
		}
		var ge *Error
		if !errors.As(err, &ge) || ge.Code != StatusNotFound {
			t.Errorf("Load(%q): %#v", path, err)
		} else if !strings.Contains(ge.Message, missing) {
			t.Errorf("Load(%q): message %q does not name %s", path, ge.Message, missing)
		}
	}
	notFound("/nonexistent/model/dir", "/nonexistent/model/dir")
	cfg := filepath.Join(tinyDir(t), "config.json")
	notFound(cfg, cfg)                                             // a file, not a directory
	notFound(filepath.Join(cfg, "sub"), filepath.Join(cfg, "sub")) // ENOTDIR

	// a checkpoint directory of symlinks to the tiny model, minus one file
	without := func(name string) string {
		dir := t.TempDir()
		entries, err := os.ReadDir(tinyDir(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || e.Name() == name {
				continue
			}
			if err := os.Symlink(filepath.Join(tinyDir(t), e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	dir := without("config.json")
	notFound(dir, filepath.Join(dir, "config.json"))
	shard := "model-00002-of-00002.safetensors"
	dir = without(shard)
	notFound(dir, filepath.Join(dir, shard))

	// config.json exists but is a directory: an I/O error, not "not found"
	dir = without("config.json")
	if err := os.Mkdir(filepath.Join(dir, "config.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir, nil)
	if !errors.Is(err, ErrIO) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotFound) {
		t.Errorf("config.json a directory: %v", err)
	}
}

func TestLoadOptions(t *testing.T) {
	for _, w := range []WeightType{WeightsAuto, WeightsBF16, WeightsInt8, WeightsQ4} {
		m, err := Load(tinyDir(t), &LoadOptions{Weights: w})
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		got, _ := m.Prop(PropWeightType)
		if w != WeightsAuto && WeightType(got) != w {
			t.Errorf("weights %s resolved to %s", w, WeightType(got))
		}
		m.Close()
	}
	m, err := Load(tinyDir(t), &LoadOptions{VocabOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if has, _ := m.Prop(PropHasWeights); has != 0 {
		t.Error("vocab-only model has weights")
	}
	if _, err := m.NewSession(nil); !errors.Is(err, ErrNoWeights) {
		t.Errorf("session on a vocab-only model: %v", err)
	}
}

func TestProgress(t *testing.T) {
	calls := 0
	m, err := Load(tinyDir(t), &LoadOptions{Progress: func(f float32, stage string) bool {
		calls++
		if f < 0 || f > 1 {
			t.Errorf("fraction %g", f)
		}
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if calls == 0 {
		t.Error("progress was never called")
	}
	if _, err := Load(tinyDir(t), &LoadOptions{Progress: func(float32, string) bool { return false }}); !errors.Is(err, ErrCancelled) {
		t.Errorf("cancelled load: %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the callback's panic", r)
			}
		}()
		Load(tinyDir(t), &LoadOptions{Progress: func(float32, string) bool { panic("boom") }})
		t.Error("Load returned after the callback panicked")
	}()
}

func TestCloseIsIdempotentAndChildrenKeepParentsAlive(t *testing.T) {
	base := atomic.LoadInt64(&liveHandles)
	m, err := Load(tinyDir(t), &LoadOptions{Weights: WeightsF32})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(&SessionOptions{MaxContext: 16, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.NewDetokStream(false)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	m.Close()
	if _, err := m.Tokenize("x", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Tokenize on a closed model: %v", err)
	}
	if _, err := m.NewSession(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("NewSession on a closed model: %v", err)
	}
	if !m.h.alive() {
		t.Fatal("the C model was freed while a session uses it")
	}
	if _, err := s.Decode(nil, []int32{2, 6}); err != nil {
		t.Fatalf("decode after the model's Close: %v", err)
	}
	if _, err := d.Feed(6); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	if !m.h.alive() {
		t.Fatal("freed while the stream uses it")
	}
	d.Close()
	if m.h.alive() {
		t.Error("the model outlived its last child")
	}
	if _, err := s.Decode(nil, []int32{2}); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode on a closed session: %v", err)
	}
	if _, err := d.Feed(2); !errors.Is(err, ErrClosed) {
		t.Errorf("Feed on a closed stream: %v", err)
	}
	if got := atomic.LoadInt64(&liveHandles); got != base {
		t.Errorf("live handles %d, want %d", got, base)
	}
}

func TestFinalizersFreeForgottenObjects(t *testing.T) {
	base := atomic.LoadInt64(&liveHandles)
	func() {
		m, err := Load(tinyDir(t), &LoadOptions{Weights: WeightsF32})
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.NewSession(&SessionOptions{MaxContext: 8, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Decode(nil, []int32{2}); err != nil {
			t.Fatal(err)
		}
		smp, err := NewSampler(m)
		if err != nil {
			t.Fatal(err)
		}
		_ = smp
	}()
	waitFreed(t, base)
}
