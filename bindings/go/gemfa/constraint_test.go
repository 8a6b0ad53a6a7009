package gemfa

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const personSchema = `{"type":"object","properties":{
 "name":{"type":"string","maxLength":5},
 "n":{"type":"integer","minimum":0,"maximum":9}},"required":["name","n"]}`

func TestGenerateJSONSchema(t *testing.T) {
	m := tinyModel(t)
	for seed := uint64(1); seed <= 6; seed++ {
		s := newSession(t, m, 512)
		g, err := s.Generate(context.Background(), Text("JSON:"), &GenerateOptions{
			MaxNewTokens: 150, JSONSchema: personSchema,
			Sampling: []SamplerOption{Temperature(1.5), Seed(seed)}}, nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if g.StopReason != StopEOG {
			t.Fatalf("seed %d: stop %s, text %q", seed, g.StopReason, g.Text)
		}
		var v struct {
			Name *string `json:"name"`
			N    *int    `json:"n"`
		}
		if err := json.Unmarshal([]byte(g.Text), &v); err != nil {
			t.Fatalf("seed %d: %q: %v", seed, g.Text, err)
		}
		if v.Name == nil || v.N == nil || len([]rune(*v.Name)) > 5 || *v.N < 0 || *v.N > 9 {
			t.Fatalf("seed %d: %q does not match the schema", seed, g.Text)
		}
	}
}

func TestGenerateAnyJSONAndCut(t *testing.T) {
	m := tinyModel(t)
	cut := 0
	for seed := uint64(1); seed <= 8; seed++ {
		s := newSession(t, m, 256)
		g, err := s.Generate(context.Background(), Text("x"), &GenerateOptions{
			MaxNewTokens: 5, JSONSchema: "{}",
			Sampling: []SamplerOption{Temperature(1.5), Seed(seed)}}, nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if g.StopReason == StopEOG {
			if !json.Valid([]byte(g.Text)) {
				t.Fatalf("ended but not JSON: %q", g.Text)
			}
		} else if g.StopReason == StopLength {
			cut++
		} else {
			t.Fatalf("stop %s", g.StopReason)
		}
	}
	if cut == 0 {
		t.Fatal("no generation was cut at 5 tokens")
	}
}

func TestJSONConstraintCalls(t *testing.T) {
	m := tinyModel(t)
	if _, err := NewJSONConstraint(m, `{"pattern":"a"}`); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("pattern: %v", err)
	}
	if _, err := NewJSONConstraint(m, `{`); !errors.Is(err, ErrFormat) {
		t.Fatalf("malformed: %v", err)
	}
	c, err := NewJSONConstraint(m, `{"type":"null"}`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.Allowed()
	if err != nil || len(ids) == 0 {
		t.Fatalf("allowed: %v %v", ids, err)
	}
	if err := c.Accept(1 << 20); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("out of range: %v", err)
	}
	if c.Complete() {
		t.Fatal("complete before any token")
	}
	smp, err := NewSampler(nil, Temperature(1), Seed(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := smp.SetConstraint(c); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, m, 64)
	defer s.Close()
	g, err := s.Generate(context.Background(), Text("x"), &GenerateOptions{Sampler: smp, MaxNewTokens: 10}, nil)
	if err != nil || g.StopReason != StopEOG || strings.TrimSpace(g.Text) != "null" {
		t.Fatalf("%v %q %v", g.StopReason, g.Text, err)
	}
	if smp.Constraint() != c {
		t.Fatal("constraint not attached")
	}
	c.Close() // still attached: freed when the sampler lets go
	smp.Close()
}

func newSession(t *testing.T, m *Model, maxContext int) *Session {
	t.Helper()
	s, err := m.NewSession(&SessionOptions{MaxContext: maxContext})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
