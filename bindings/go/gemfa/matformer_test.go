package gemfa

import (
	"context"
	"errors"
	"testing"
)

// lastLogits decodes ids in a new session of m and returns the last logits.
func lastLogits(t *testing.T, m *Model, ids []int32) []float32 {
	t.Helper()
	s, err := m.NewSession(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.Decode(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), l...)
}

func TestMatFormerDeriveMatchesOption(t *testing.T) {
	const spec = "ffn=64:skip=3,21"
	ids := []int32{2, 17, 300, 45, 901}
	base, err := Load(tinyDir(t), &LoadOptions{Weights: WeightsF32})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := base.Derive(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	loaded, err := Load(tinyDir(t), &LoadOptions{Weights: WeightsF32, MatFormer: spec})
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	full := lastLogits(t, base, ids)
	base.Close() // the sub-model keeps the shared weights alive
	a, b := lastLogits(t, sub, ids), lastLogits(t, loaded, ids)
	same, differs := true, false
	for i := range a {
		same = same && a[i] == b[i]
		differs = differs || a[i] != full[i]
	}
	if !same || !differs {
		t.Fatalf("derived == option-loaded: %v, differs from the full model: %v", same, differs)
	}
	if s, _ := sub.MatFormer(); s != spec {
		t.Fatalf("MatFormer() = %q", s)
	}
	if n, _ := sub.Prop(PropNLayers); n != 23 {
		t.Fatalf("n_layers %d", n)
	}
	if n, _ := sub.Prop(PropSkippedLayers); n != 2 {
		t.Fatalf("skipped %d", n)
	}
	if b, err := sub.BaseLayer(3); err != nil || b != 4 {
		t.Fatalf("BaseLayer(3) = %d, %v", b, err)
	}
}

func TestMatFormerBadSpecs(t *testing.T) {
	m := tinyModel(t)
	for _, spec := range []string{"", "ffn=0", "ffn=129", "skip=18", "garbage", "a\x00b"} {
		if _, err := m.Derive(spec); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Derive(%q): %v", spec, err)
		}
	}
	if _, err := m.Derive("e2b"); !errors.Is(err, ErrModelMismatch) {
		t.Errorf("Derive(e2b): %v", err)
	}
	if _, err := Load(tinyDir(t), &LoadOptions{MatFormer: "ffn=x"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Load with a bad spec: %v", err)
	}
}
