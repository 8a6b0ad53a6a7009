package gemfa

import (
	"errors"
	"math"
	"math/rand"
	"testing"
)

func TestSamplerBasics(t *testing.T) {
	logits := []float32{0.1, 2.5, -1, 2.4, 0}
	s, err := NewSampler(nil, Temperature(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if id, err := s.Sample(logits, nil); err != nil || id != 1 {
		t.Errorf("greedy: %d %v", id, err)
	}
	if err := s.SetLogitBias(1, float32(math.Inf(-1))); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.Sample(logits, nil); id != 3 {
		t.Errorf("banned id chosen: %d", id)
	}
	s.ClearLogitBias()
	if err := s.SetPenalties(2, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.Sample([]float32{1, 3, 2.9}, []int32{1}); id != 2 {
		t.Errorf("repetition penalty ignored history: %d", id)
	}
}

func TestSamplerSeeds(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	logits := make([]float32, 64)
	for i := range logits {
		logits[i] = float32(r.NormFloat64())
	}
	draws := func(seed uint64) []int32 {
		s, err := NewSampler(nil, Temperature(1), Seed(seed))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := make([]int32, 40)
		for i := range out {
			out[i], _ = s.Sample(logits, nil)
		}
		return out
	}
	if !equalIDs(draws(3), draws(3)) || equalIDs(draws(3), draws(4)) {
		t.Error("seeds do not reproduce / differ")
	}
	s, _ := NewSampler(nil, Temperature(5), TopK(1))
	defer s.Close()
	for i := 0; i < 20; i++ {
		if id, _ := s.Sample([]float32{0.5, 0.4, 3, 0.1}, nil); id != 2 {
			t.Fatalf("top-k 1 drew %d", id)
		}
	}
}

func TestSamplerFromSession(t *testing.T) {
	m := tinyModel(t)
	s, err := m.NewSession(&SessionOptions{MaxContext: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	smp, err := NewSampler(m, Temperature(0))
	if err != nil {
		t.Fatal(err)
	}
	defer smp.Close()
	if _, err := smp.SampleSession(s); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty session: %v", err)
	}
	logits, err := s.Decode(nil, []int32{2, 6, 475})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := smp.SampleSession(s); err != nil || int(id) != argmax(logits) {
		t.Errorf("SampleSession = %d %v, want %d", id, err, argmax(logits))
	}
}

func TestSamplerErrors(t *testing.T) {
	s, err := NewSampler(nil)
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	for name, err := range map[string]error{
		"temperature<0":   s.SetTemperature(-1),
		"temperature nan": s.SetTemperature(nan),
		"top_k<0":         s.SetTopK(-1),
		"top_k huge":      s.SetTopK(1 << 40),
		"top_p 0":         s.SetTopP(0),
		"top_p>1":         s.SetTopP(1.5),
		"min_p>1":         s.SetMinP(2),
		"penalty 0":       s.SetPenalties(0, 0, 0, 0),
		"no logits":       func() error { _, e := s.Sample(nil, nil); return e }(),
		"no finite":       func() error { _, e := s.Sample([]float32{float32(math.Inf(-1))}, nil); return e }(),
	} {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewSampler(nil, Temperature(-1)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad option: %v", err)
	}
	s.Close()
	s.Close()
	if _, err := s.Sample([]float32{1}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("closed sampler: %v", err)
	}
}

func TestLogCallback(t *testing.T) {
	lines := make(chan string, 1000)
	SetLogCallback(func(level LogLevel, msg string) {
		select {
		case lines <- msg:
		default:
		}
	}, LogDebug)
	defer SetLogCallback(nil, LogError)
	Load("/nonexistent/model", nil)
	m, err := Load(tinyDir(t), &LoadOptions{VocabOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	// no assertion on the count: the library decides what it logs
	close(lines)
	for range lines {
	}
}

// gemfa.h: a sampler copies the model's defaults and keeps no pointer to it,
// so it keeps working after the model is freed.
func TestSamplerOutlivesModel(t *testing.T) {
	m, err := Load(tinyDir(t), &LoadOptions{VocabOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSampler(m, Seed(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	twin, err := NewSampler(m, Seed(3))
	if err != nil {
		t.Fatal(err)
	}
	defer twin.Close()
	m.Close() // no child holds the model: the C model is freed here
	logits := make([]float32, 300)
	for i := range logits {
		logits[i] = float32(i % 7)
	}
	for i := 0; i < 20; i++ {
		a, err := s.Sample(logits, []int32{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := twin.Sample(logits, []int32{1, 2})
		if a != b {
			t.Fatalf("draw %d: %d vs %d", i, a, b)
		}
	}
	if err := s.SetTopK(1); err != nil {
		t.Fatal(err)
	}
	if id, err := s.Sample(logits, nil); err != nil || id != 6 {
		t.Errorf("top-k 1: %d, %v", id, err)
	}
}
