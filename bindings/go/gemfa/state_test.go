package gemfa

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

var altIDs = []int32{2, 105, 17, 300, 9}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func decodeOrFatal(t *testing.T, s *Session, ids []int32) []float32 {
	t.Helper()
	out, err := s.Decode(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSaveLoadContinuesBitForBit(t *testing.T) {
	m := tinyModel(t)
	_, tokens, _ := golden(t, "long")
	s, err := m.NewSession(&SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	decodeOrFatal(t, s, tokens[:20])
	state, err := s.Save()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(state, []byte("GFSTATE\x1a")) {
		t.Fatalf("state starts with %q", state[:8])
	}
	c, err := m.NewContext(&ContextOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.LoadSession(state, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _ := r.Tokens(); !equalIDs(got, tokens[:20]) || r.MaxContext() != s.MaxContext() {
		t.Fatalf("restored tokens %v, max context %d", got, r.MaxContext())
	}
	a, _ := s.Logits()
	b, _ := r.Logits()
	if !equalFloats(a, b) {
		t.Error("restored last logits differ")
	}
	if !equalFloats(decodeOrFatal(t, s, altIDs), decodeOrFatal(t, r, altIDs)) {
		t.Error("restored session continues differently")
	}

	// file round trip into a smaller context, through Model.LoadSession
	path := filepath.Join(t.TempDir(), "state")
	if err := s.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	onDisk, _ := os.ReadFile(path)
	again, _ := s.Save()
	if !bytes.Equal(onDisk, again) {
		t.Error("SaveFile and Save differ")
	}
	f, err := c.LoadSessionFile(path, 40)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.MaxContext() != 40 || f.NTokens() != 25 {
		t.Errorf("file session: %d tokens of %d", f.NTokens(), f.MaxContext())
	}
	g, err := m.LoadSession(again, &SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !equalFloats(decodeOrFatal(t, f, altIDs[:2]), decodeOrFatal(t, g, altIDs[:2])) {
		t.Error("file and buffer restores continue differently")
	}
}

func TestLoadSessionErrors(t *testing.T) {
	m := tinyModel(t)
	s, err := m.NewSession(&SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	decodeOrFatal(t, s, []int32{2, 6, 100})
	state, _ := s.Save()
	c, _ := m.NewContext(&ContextOptions{Threads: 1})
	defer c.Close()
	cases := []struct {
		data []byte
		want error
	}{
		{nil, ErrFormat},
		{state[:len(state)-1], ErrFormat},
		{append(append([]byte{}, state...), 0), ErrFormat},
	}
	for i, k := range cases {
		if _, err := c.LoadSession(k.data, 0); !errors.Is(err, k.want) {
			t.Errorf("case %d: %v, want %v", i, err, k.want)
		}
	}
	if _, err := c.LoadSession(state, 2); !errors.Is(err, ErrContextFull) {
		t.Errorf("small context: %v", err)
	}
	if _, err := c.LoadSession(state, -1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative context: %v", err)
	}
	if _, err := c.LoadSessionFile("/nonexistent/state", 0); !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	other, err := Load(filepath.Join(dataDir(t), "runtime", "tiny10-s1"), &LoadOptions{Weights: WeightsF32})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.LoadSession(state, nil); !errors.Is(err, ErrModelMismatch) {
		t.Errorf("another model: %v", err)
	}
	if StatusModelMismatch.String() != "GEMFA_ERR_MODEL_MISMATCH" {
		t.Errorf("status name %s", StatusModelMismatch)
	}
	s.Close()
	if _, err := s.Save(); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: %v", err)
	}
	if err := s.Truncate(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("closed truncate: %v", err)
	}
}

func TestTruncate(t *testing.T) {
	m := tinyModel(t)
	_, tokens, _ := golden(t, "long")
	a, _ := m.NewSession(&SessionOptions{Threads: 1})
	defer a.Close()
	b, _ := m.NewSession(&SessionOptions{Threads: 1})
	defer b.Close()
	decodeOrFatal(t, a, tokens[:12])
	decodeOrFatal(t, a, tokens[12:])
	if err := a.Truncate(context.Background(), 12); err != nil {
		t.Fatal(err)
	}
	if lg, _ := a.Logits(); lg != nil || a.NTokens() != 12 {
		t.Fatalf("after truncate: %d tokens, logits %v", a.NTokens(), lg != nil)
	}
	decodeOrFatal(t, b, tokens[:12])
	if !equalFloats(decodeOrFatal(t, a, altIDs), decodeOrFatal(t, b, altIDs)) {
		t.Error("truncate + decode differs from a fresh session fed the same pieces")
	}
	n := a.NTokens()
	if err := a.Truncate(context.Background(), n+1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("n past the end: %v", err)
	}
	if err := a.Truncate(context.Background(), -1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative n: %v", err)
	}
	if a.NTokens() != n {
		t.Error("a failed truncate changed the session")
	}
}

func TestKVTypes(t *testing.T) {
	m := tinyModel(t)
	_, tokens, _ := golden(t, "long")
	a, err := m.NewSession(&SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := m.NewSession(&SessionOptions{Threads: 1, KVType: KVF16})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.KVType() != KVF32 || b.KVType() != KVF16 {
		t.Fatalf("KV types %v, %v", a.KVType(), b.KVType())
	}
	if 2*b.KVBytes() != a.KVBytes() {
		t.Fatalf("f16 KV bytes %d, f32 %d", b.KVBytes(), a.KVBytes())
	}
	decodeOrFatal(t, b, tokens[:20])
	state, err := b.Save()
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.LoadSession(state, &SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.KVType() != KVF16 {
		t.Fatalf("loaded KV type %v", r.KVType())
	}
	if _, err := m.LoadSession(state, &SessionOptions{Threads: 1, KVType: KVF32}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("f16 state loaded as f32: %v", err)
	}
	if _, err := m.NewSession(&SessionOptions{KVType: KVType(9)}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown KV type: %v", err)
	}
	if KVF16.String() != "f16" || KVDefault.String() != "default" {
		t.Fatal("KVType names")
	}
}
