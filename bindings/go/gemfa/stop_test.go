package gemfa

import (
	"context"
	"errors"
	"math"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStopMatcher(t *testing.T) {
	m, err := NewStopMatcher("</answer>", "دنیا")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out, hit, err := m.Feed("42 </ans")
	if err != nil || out != "42 " || hit {
		t.Fatalf("feed: %q %v %v", out, hit, err)
	}
	if n, _ := m.Held(); n != 5 {
		t.Errorf("held %d, want 5", n)
	}
	if out, hit, _ = m.Feed("wer> more"); out != "" || !hit {
		t.Errorf("hit: %q %v", out, hit)
	}
	if out, hit, _ = m.Feed("later"); out != "" || !hit {
		t.Errorf("after a hit: %q %v", out, hit)
	}
	// a split inside a Persian character
	m.Reset()
	raw := "سلام دنیا"
	out, hit, _ = m.Feed(raw[:len(raw)-1])
	if out != "سلام " || hit {
		t.Errorf("holding: %q %v", out, hit)
	}
	if n, _ := m.Held(); n != len("دنیا")-1 {
		t.Errorf("held %d", n)
	}
	if out, hit, _ = m.Feed(raw[len(raw)-1:]); out != "" || !hit {
		t.Errorf("Persian stop: %q %v", out, hit)
	}
	m.Reset()
	out, hit, _ = m.Feed("سلام دن")
	if out != "سلام " || hit {
		t.Errorf("after reset: %q %v", out, hit)
	}
	if rest, _ := m.Flush(); rest != "دن" {
		t.Errorf("flush %q", rest)
	}
	if _, err := NewStopMatcher("ok", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty stop string: %v", err)
	}
	if _, err := NewStopMatcher("\xc3("); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	none, err := NewStopMatcher()
	if err != nil {
		t.Fatal(err)
	}
	if out, hit, _ := none.Feed("x"); out != "x" || hit {
		t.Errorf("no stops: %q %v", out, hit)
	}
	none.Close()
	m.Close()
	if _, _, err := m.Feed("x"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// naiveLogprobs is a log-softmax in float64.
func naiveLogprobs(row []float32) []float64 {
	m := math.Inf(-1)
	for _, x := range row {
		m = math.Max(m, float64(x))
	}
	sum := 0.0
	for _, x := range row {
		sum += math.Exp(float64(x) - m)
	}
	lse := m + math.Log(sum)
	out := make([]float64, len(row))
	for i, x := range row {
		out[i] = float64(x) - lse
	}
	return out
}

func TestLogprobsFunction(t *testing.T) {
	row := make([]float32, 5000)
	for i := range row {
		row[i] = float32(math.Sin(float64(i)*0.37) * 6)
	}
	row[42], row[4000] = 9, 9 // a tie at the top
	want := naiveLogprobs(row)
	lp, tops, err := Logprobs(row, 17, 4)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(lp)-want[17]) > 1e-5 {
		t.Errorf("logprob %v, want %v", lp, want[17])
	}
	order := make([]int, len(row))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return row[order[a]] > row[order[b]] })
	if len(tops) != 4 || tops[0].ID != 42 || tops[1].ID != 4000 {
		t.Fatalf("top %v", tops)
	}
	for k, tp := range tops {
		if int(tp.ID) != order[k] || math.Abs(float64(tp.Logprob)-want[order[k]]) > 1e-5 {
			t.Errorf("rank %d: %+v, want id %d %v", k, tp, order[k], want[order[k]])
		}
	}
	if _, tops, _ := Logprobs(row[:3], -1, 10); len(tops) != 3 {
		t.Errorf("top beyond the vocabulary: %d entries", len(tops))
	}
	if _, _, err := Logprobs(row, 5000, 0); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token out of range: %v", err)
	}
	if _, _, err := Logprobs(nil, 0, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no logits: %v", err)
	}
	nan := []float32{float32(math.NaN()), float32(math.Inf(-1))}
	if _, _, err := Logprobs(nan, 0, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no finite logit: %v", err)
	}
	if _, _, err := Logprobs(row, 0, -1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative top: %v", err)
	}
}

func greedyGenerate(t *testing.T, m *Model, opts GenerateOptions) (*Generation, []string, []int32) {
	t.Helper()
	ref, msgs, _ := chat01(t)
	s, err := m.NewSession(&SessionOptions{MaxContext: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opts.MaxNewTokens = len(ref.IDs)
	opts.Sampling = []SamplerOption{Temperature(0)}
	var pieces []string
	g, err := s.Generate(context.Background(), UserMessage(msgs[0].Content), &opts, func(p string) error {
		pieces = append(pieces, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := s.Tokens()
	return g, pieces, toks
}

func TestGenerateStopStringsAndLogprobs(t *testing.T) {
	m := tinyModel(t)
	full, _, _ := greedyGenerate(t, m, GenerateOptions{Logprobs: true})
	if len(full.Logprobs) != len(full.IDs) {
		t.Fatalf("%d logprob entries for %d ids", len(full.Logprobs), len(full.IDs))
	}
	// two consecutive tokens' text spans a token boundary
	stop := ""
	for k := 2; k+1 < len(full.Logprobs); k++ {
		var b []byte
		for _, e := range full.Logprobs[k : k+2] {
			if len(e.Bytes) == 0 {
				b = nil
				break
			}
			for _, x := range e.Bytes {
				b = append(b, byte(x))
			}
		}
		if len(b) > 0 && utf8.Valid(b) && strings.TrimSpace(string(b)) != "" && strings.Contains(full.Text, string(b)) {
			stop = string(b)
			break
		}
	}
	if stop == "" {
		t.Fatal("no two-token stop string in the greedy answer")
	}
	g, pieces, toks := greedyGenerate(t, m, GenerateOptions{Stop: []string{stop, "never here"}})
	if g.StopReason != StopString {
		t.Errorf("stop reason %s", g.StopReason)
	}
	if want := full.Text[:strings.Index(full.Text, stop)]; g.Text != want {
		t.Errorf("text %q, want %q", g.Text, want)
	}
	if strings.Join(pieces, "") != g.Text {
		t.Error("pieces do not add up to the text")
	}
	if len(g.IDs) >= len(full.IDs) || !equalIDs(g.IDs, full.IDs[:len(g.IDs)]) {
		t.Errorf("ids %v are not a shorter prefix of %v", g.IDs, full.IDs)
	}
	if !equalIDs(toks, append(append([]int32(nil), g.PromptIDs...), g.IDs...)) {
		t.Error("the session does not hold every generated token")
	}
	if text, _ := m.Detokenize(g.IDs, true); !strings.Contains(text, stop) {
		t.Error("the stop string's tokens are not in the session")
	}
	if g.Logprobs != nil {
		t.Error("logprobs without Logprobs")
	}

	// logprobs against the raw logits of a replay
	lg, _, _ := greedyGenerate(t, m, GenerateOptions{Logprobs: true, TopLogprobs: 3})
	s, _ := m.NewSession(&SessionOptions{MaxContext: 256})
	defer s.Close()
	row, err := s.Decode(context.Background(), lg.PromptIDs)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range lg.IDs {
		want := naiveLogprobs(row)
		e := lg.Logprobs[i]
		if math.Abs(e.Logprob-want[id]) > 1e-4 || len(e.TopLogprobs) != 3 {
			t.Fatalf("step %d: %v (%d alternatives), want %v", i, e.Logprob, len(e.TopLogprobs), want[id])
		}
		if e.TopLogprobs[0].Token != e.Token || math.Abs(e.TopLogprobs[0].Logprob-e.Logprob) > 0 {
			t.Errorf("step %d: greedy token is not the top alternative", i)
		}
		b, _ := m.TokenBytes(id)
		if len(b) != len(e.Bytes) {
			t.Errorf("step %d: bytes %v vs %v", i, e.Bytes, b)
		}
		if row, err = s.Decode(context.Background(), []int32{id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := greedyGenerateErr(m, GenerateOptions{TopLogprobs: 3}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("TopLogprobs without Logprobs: %v", err)
	}
	if _, _, err := greedyGenerateErr(m, GenerateOptions{Logprobs: true, TopLogprobs: 21}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("TopLogprobs 21: %v", err)
	}
	if _, _, err := greedyGenerateErr(m, GenerateOptions{Stop: []string{""}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty stop string: %v", err)
	}
}

func greedyGenerateErr(m *Model, opts GenerateOptions) (*Generation, int, error) {
	s, err := m.NewSession(&SessionOptions{MaxContext: 64})
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	g, err := s.Generate(context.Background(), UserMessage("x"), &opts, nil)
	return g, s.NTokens(), err
}
