package gemfa

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

var specPrompt = []int32{2, 105, 17, 300, 9, 44, 1000, 3}

func plainGreedy(t *testing.T, m *Model, n int) []int32 {
	s, err := m.NewSession(&SessionOptions{MaxContext: 128, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	smp, _ := NewSampler(nil, Temperature(0))
	defer smp.Close()
	logits, err := s.Decode(context.Background(), specPrompt)
	if err != nil {
		t.Fatal(err)
	}
	var out []int32
	for len(out) < n {
		id, err := smp.Sample(logits, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
		if logits, err = s.Decode(context.Background(), []int32{id}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func specSession(t *testing.T, m *Model) *Session {
	s, err := m.NewSession(&SessionOptions{MaxContext: 128, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decode(context.Background(), specPrompt); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSpeculatorGreedyEqualsPlain(t *testing.T) {
	m := tinyModel(t)
	other, err := Load(filepath.Join(dataDir(t), "runtime", "tiny10-s1"), &LoadOptions{Weights: WeightsF32})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	want := plainGreedy(t, m, 24)
	for _, draft := range []*Model{m, other} {
		for _, k := range []int{1, 4, 8} {
			s := specSession(t, m)
			sp, err := NewSpeculator(s, draft, k)
			if err != nil {
				t.Fatal(err)
			}
			smp, _ := NewSampler(nil, Temperature(0))
			var got []int32
			for len(got) < len(want) {
				ids, err := sp.Step(context.Background(), smp)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids...)
			}
			if !equalIDs(got[:len(want)], want) {
				t.Errorf("k %d: %v, plain greedy %v", k, got[:len(want)], want)
			}
			st, _ := sp.Stats()
			if st.Emitted != st.Accepted+st.Steps || (draft == m && st.Acceptance() != 1) ||
				(draft == other && st.Acceptance() >= 1) {
				t.Errorf("k %d: stats %+v", k, st)
			}
			smp.Close()
			sp.Close()
			s.Close()
		}
	}
}

func TestSpeculatorFuncAndErrors(t *testing.T) {
	m := tinyModel(t)
	want := plainGreedy(t, m, 12)
	s := specSession(t, m)
	defer s.Close()
	smp, _ := NewSampler(nil, Temperature(0))
	defer smp.Close()
	for _, k := range []int{0, -1, 33, 1 << 40} {
		if _, err := NewSpeculator(s, m, k); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("k %d: %v", k, err)
		}
	}
	oracle := func(tokens []int32, max int) []int32 {
		at := len(tokens) - len(specPrompt)
		end := at + max
		if end > len(want) {
			end = len(want)
		}
		return want[at:end]
	}
	sp, err := NewSpeculatorFunc(s, oracle, 3)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := sp.Step(context.Background(), smp)
	if err != nil || !equalIDs(ids, want[:4]) {
		t.Fatalf("oracle step: %v %v", ids, err)
	}
	if err := sp.Flush(context.Background()); err != nil || s.NTokens() != len(specPrompt)+4 {
		t.Fatalf("flush: %v, %d tokens", err, s.NTokens())
	}
	sp.Close()

	bad, _ := NewSpeculatorFunc(s, func([]int32, int) []int32 { return []int32{1, 2, 3, 4, 5} }, 2)
	if _, err := bad.Step(context.Background(), smp); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("too many drafts: %v", err)
	}
	if s.NTokens() != len(specPrompt)+4 {
		t.Errorf("a failed step changed the session")
	}
	bad.Close()
	panicky, _ := NewSpeculatorFunc(s, func([]int32, int) []int32 { panic("draft bug") }, 2)
	func() {
		defer func() {
			if r := recover(); r != "draft bug" {
				t.Errorf("panic not re-raised: %v", r)
			}
		}()
		panicky.Step(context.Background(), smp)
	}()
	panicky.Close()
	if _, err := NewSpeculatorFunc(s, nil, 2); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil fn: %v", err)
	}
}
