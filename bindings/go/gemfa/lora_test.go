package gemfa

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// makeLoRA writes a random adapter for the tiny model and the checkpoint
// with it merged in numpy (tests/tools/make_lora.py, run with
// /usr/bin/python3); skips when numpy is not there.
func makeLoRA(t *testing.T, scale string) (adapter, merged string) {
	t.Helper()
	tool := filepath.Join(dataDir(t), "..", "tools", "make_lora.py")
	if _, err := os.Stat(tool); err != nil {
		t.Skip("no tests/tools/make_lora.py")
	}
	if exec.Command("/usr/bin/python3", "-c", "import numpy").Run() != nil {
		t.Skip("make_lora.py needs /usr/bin/python3 with numpy")
	}
	dir := t.TempDir()
	adapter, merged = filepath.Join(dir, "adapter"), filepath.Join(dir, "merged")
	for _, args := range [][]string{
		{tool, "make", tinyDir(t), "--out", adapter, "--rank", "4", "--dtype", "bf16"},
		{tool, "merge", tinyDir(t), "--out", merged, adapter + ":" + scale},
	} {
		if out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput(); err != nil {
			t.Fatalf("make_lora.py: %v\n%s", err, out)
		}
	}
	return adapter, merged
}

func lastLogits(t *testing.T, dir string, opts *LoadOptions) []float32 {
	t.Helper()
	m, err := Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.NewSession(&SessionOptions{MaxContext: 32, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logits, err := s.Decode(context.Background(), []int32{2, 6, 475, 8})
	if err != nil {
		t.Fatal(err)
	}
	return logits
}

func TestLoRAMatchesMergedCheckpoint(t *testing.T) {
	adapter, merged := makeLoRA(t, "-0.75")
	got := lastLogits(t, tinyDir(t), &LoadOptions{Weights: WeightsInt8,
		LoRA: []LoRA{{Dir: adapter, Scale: -0.75}}})
	want := lastLogits(t, merged, &LoadOptions{Weights: WeightsInt8})
	base := lastLogits(t, tinyDir(t), &LoadOptions{Weights: WeightsInt8})
	differs := false
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("logit %d: %v with LoRA, %v merged", i, got[i], want[i])
		}
		differs = differs || got[i] != base[i]
	}
	if !differs {
		t.Fatal("the adapter changed nothing")
	}

	m, err := Load(tinyDir(t), &LoadOptions{LoRA: []LoRA{{Dir: adapter}, {Dir: adapter, Scale: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if n, _ := m.Prop(PropLoRAAdapters); n != 2 {
		t.Errorf("PropLoRAAdapters = %d, want 2", n)
	}
	if n, _ := m.Prop(PropLoRAMatrices); n != 25*7-10 {
		t.Errorf("PropLoRAMatrices = %d, want %d", n, 25*7-10)
	}
}

func TestLoRAErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(tinyDir(t), &LoadOptions{LoRA: []LoRA{{Dir: filepath.Join(dir, "none")}}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing adapter: %v, want ErrNotFound", err)
	}
	if _, err := Load(tinyDir(t), &LoadOptions{LoRA: []LoRA{{Dir: dir, Scale: float32(math.NaN())}}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NaN scale: %v, want ErrInvalidArgument", err)
	}
	if _, err := Load(tinyDir(t), &LoadOptions{LoRA: []LoRA{{Dir: "a\x00b"}}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NUL in the directory: %v, want ErrInvalidArgument", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(`{"r": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(tinyDir(t), &LoadOptions{LoRA: []LoRA{{Dir: dir}}}); !errors.Is(err, ErrConfig) {
		t.Errorf("rank 0: %v, want ErrConfig", err)
	}
}
